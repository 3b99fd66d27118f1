package router_test

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// perCanary is a weighted router that cannot serve Canaries named "grpc".
type perCanary struct{ weighted }

func (perCanary) UnsupportedFor(c *sluicev1beta1.Canary, provider string) []string {
	if c.Name == "grpc" {
		return []string{"provider " + provider + " cannot route grpc"}
	}
	return nil
}

// TestUnsupported_PerCanaryCapabilities: a router's per-Canary report is
// added to what its type lacks.
func TestUnsupported_PerCanaryCapabilities(t *testing.T) {
	g := NewWithT(t)
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50, Mirror: true}}}
	mirror := HavePrefix("provider p cannot mirror traffic: remove analysis.mirror (provider p supports")
	g.Expect(router.Unsupported(perCanary{}, c, "p")).To(ConsistOf(mirror))
	c.Name = "grpc"
	g.Expect(router.Unsupported(perCanary{}, c, "p")).To(ConsistOf(mirror, Equal("provider p cannot route grpc")))
}

// TestRegistry_MetricsUnavailable: a provider registered without builtins
// says why; registering queries afterwards replaces the reason.
func TestRegistry_MetricsUnavailable(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	r.RegisterMetricsUnavailable("its series cannot tell the canary from the primary", "p", "p:v1")
	_, err := r.BuiltinQuery("p:v1", "request-success-rate")
	g.Expect(err).To(MatchError("provider p:v1 has no builtin metric request-success-rate: its series cannot tell the canary from the primary; measure it with a MetricTemplate (templateRef)"))
	r.RegisterMetrics(map[string]string{"request-success-rate": "up"}, "p")
	g.Expect(r.BuiltinQuery("p", "request-success-rate")).To(Equal("up"))
	_, err = r.BuiltinQuery("p:v1", "request-success-rate")
	g.Expect(err).To(HaveOccurred())
}
