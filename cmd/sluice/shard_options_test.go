package main

import (
	"flag"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestOptions_Shard(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantLease string
		matches   map[string]bool // label value ("" for none) → selected
	}{
		{name: "not sharded takes every object", wantLease: "sluice-leader-election"},
		{name: "a shard takes its own label and its own Lease", args: []string{"--shard-key=shard1"}, wantLease: "sluice-leader-election-shard1",
			matches: map[string]bool{"shard1": true, "shard2": false, "": false}},
		{name: "the main manager of a sharded install takes the unlabelled", args: []string{"--watch-label-selector=!" + sluicev1beta1.ShardLabel},
			wantLease: "sluice-leader-election", matches: map[string]bool{"shard1": false, "": true}},
		{name: "a selector of several shards", args: []string{"--watch-label-selector=" + sluicev1beta1.ShardLabel + " in (a,b)"},
			wantLease: "sluice-leader-election", matches: map[string]bool{"a": true, "b": true, "c": false, "": false}},
		{name: "both flags", args: []string{"--shard-key=a", "--watch-label-selector=x=y"}, wantErr: "--shard-key and --watch-label-selector are exclusive"},
		{name: "a key that is no label value", args: []string{"--shard-key=a/b"}, wantErr: `--shard-key "a/b" is not a label value`},
		{name: "a key that makes no Lease name", args: []string{"--shard-key=Shard_1"}, wantErr: "not a DNS name"},
		{name: "a bad selector", args: []string{"--watch-label-selector=a in (b"}, wantErr: "--watch-label-selector \"a in (b\" is not a label selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := DefaultOptions()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.BindFlags(fs)
			g.Expect(fs.Parse(tt.args)).To(Succeed())
			err := o.Validate()
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(o.leaderElectionID()).To(Equal(tt.wantLease))
			sel, err := o.shardSelector()
			g.Expect(err).NotTo(HaveOccurred())
			if tt.matches == nil {
				g.Expect(sel).To(BeNil())
				return
			}
			for value, want := range tt.matches {
				set := labels.Set{}
				if value != "" {
					set[sluicev1beta1.ShardLabel] = value
				}
				g.Expect(sel.Matches(set)).To(Equal(want), "label %q", value)
			}
		})
	}
}

// TestShardCache: the selector filters the owned kinds and leaves the
// routing objects' own restriction and the shared kinds alone.
func TestShardCache(t *testing.T) {
	g := NewWithT(t)
	g.Expect(shardCache(nil, nil)).To(BeNil())
	routing := map[client.Object]cache.ByObject{&sluicev1beta1.MetricTemplate{}: {Label: labels.Everything()}}
	sel := labels.SelectorFromSet(labels.Set{sluicev1beta1.ShardLabel: "a"})
	out := shardCache(routing, sel)
	kinds := map[string]labels.Selector{}
	for o, by := range out {
		kinds[fmt.Sprintf("%T", o)] = by.Label
	}
	g.Expect(kinds).To(HaveLen(4))
	for _, k := range []string{"*v1beta1.Canary", "*v1beta1.GitSync", "*v1beta1.Pipeline"} {
		g.Expect(kinds).To(HaveKeyWithValue(k, sel))
	}
	g.Expect(kinds["*v1beta1.MetricTemplate"].String()).To(BeEmpty())
}
