package main

import (
	"flag"
	"testing"

	. "github.com/onsi/gomega"
)

func TestOptions_SelectorLabels(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	g.Expect(o.SelectorLabels).To(Equal("app,name,app.kubernetes.io/name"), "Flagger's default and order")
	g.Expect(selectorLabelList(o.SelectorLabels)).To(Equal([]string{"app", "name", "app.kubernetes.io/name"}))

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{"--selector-labels= example.com/component , app,"})).To(Succeed())
	g.Expect(selectorLabelList(o.SelectorLabels)).To(Equal([]string{"example.com/component", "app"}))
	g.Expect(o.Validate()).To(Succeed())

	tests := []struct {
		value   string
		wantErr string
	}{
		{value: "", wantErr: "--selector-labels must name at least one label"},
		{value: " , ", wantErr: "--selector-labels must name at least one label"},
		{value: "app,bad key", wantErr: `--selector-labels: "bad key" is not a label key`},
		{value: "-app", wantErr: `"-app" is not a label key`},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		o.SelectorLabels = tt.value
		g.Expect(o.Validate()).To(MatchError(ContainSubstring(tt.wantErr)), tt.value)
	}
}
