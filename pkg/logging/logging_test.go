package logging

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestValidate(t *testing.T) {
	g := NewWithT(t)
	for _, l := range []string{"debug", "info", "error", "INFO"} {
		g.Expect(Validate(l, "json")).To(Succeed(), l)
	}
	g.Expect(Validate("info", "console")).To(Succeed())
	err := Validate("loud", "xml")
	g.Expect(err).To(MatchError(ContainSubstring(`--log-level must be debug, info or error, not "loud"`)))
	g.Expect(err).To(MatchError(ContainSubstring(`--log-encoding must be json or console, not "xml"`)))
}

func TestNew(t *testing.T) {
	g := NewWithT(t)
	g.Expect(New("debug", "console").V(1).Enabled()).To(BeTrue())
	g.Expect(New("info", "json").V(1).Enabled()).To(BeFalse())
	g.Expect(New("error", "json").Enabled()).To(BeFalse())
}
