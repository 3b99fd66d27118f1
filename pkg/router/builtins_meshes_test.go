package router_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/apisix"
	"github.com/sluice-cd/sluice/pkg/router/gloo"
	"github.com/sluice-cd/sluice/pkg/router/kuma"
	"github.com/sluice-cd/sluice/pkg/router/linkerd"
	"github.com/sluice-cd/sluice/pkg/router/smi"
)

// TestBuiltinQuery_Meshes: the linkerd, gloo, kuma and apisix routers
// register both builtin metrics, whose queries render, select the canary's
// namespace and name the canary; the SMI providers have none (the series
// depend on the mesh) and say to use a MetricTemplate.
func TestBuiltinQuery_Meshes(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	linkerd.Register(r)
	smi.Register(r)
	gloo.Register(r)
	kuma.Register(r)
	apisix.Register(r)
	canary := map[string]string{
		"linkerd": `deployment=~"web"`,
		"gloo":    `"ns-web-canaryupstream-`,
		"kuma":    `"web-canary_ns_svc_`,
		"apisix":  `"ns_web-web-canary_`,
	}
	for p, want := range canary {
		for _, m := range []string{"request-success-rate", "request-duration"} {
			q, err := r.BuiltinQuery(p, m)
			g.Expect(err).NotTo(HaveOccurred(), "%s %s", p, m)
			out, err := metrics.Render(q, metrics.Model{Namespace: "ns", Target: "web", Service: "web", Route: "web", Interval: time.Minute})
			g.Expect(err).NotTo(HaveOccurred(), "%s %s", p, m)
			g.Expect(out).To(ContainSubstring(want), "%s %s: the query measures the canary", p, m)
			g.Expect(out).To(ContainSubstring("[1m]"), "%s %s", p, m)
			g.Expect(out).NotTo(ContainSubstring("primary"), "%s %s", p, m)
		}
	}
	_, err := r.BuiltinQuery(smi.NameV1Alpha2, "request-success-rate")
	g.Expect(err).To(MatchError(ContainSubstring("measure it with a MetricTemplate")))
	g.Expect(r.Names()).To(Equal([]string{"apisix", "gloo", "kuma", "linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3"}))
}
