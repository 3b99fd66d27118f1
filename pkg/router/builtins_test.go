package router_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	"github.com/sluice-cd/sluice/pkg/router/istio"
	"github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

// TestBuiltinQuery: every router registers both builtin metrics under each
// of its names, and each query renders; anything else names what to use.
func TestBuiltinQuery(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	kubernetes.Register(r)
	traefik.Register(r)
	istio.Register(r)
	gatewayapi.Register(r)
	for _, p := range []string{"istio", "traefik", "gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1", "kubernetes"} {
		for _, m := range []string{"request-success-rate", "request-duration"} {
			q, err := r.BuiltinQuery(p, m)
			g.Expect(err).NotTo(HaveOccurred(), "%s %s", p, m)
			out, err := metrics.Render(q, metrics.Model{Namespace: "ns", Target: "t", Service: "s", Route: "r", Interval: time.Minute})
			g.Expect(err).NotTo(HaveOccurred(), "%s %s", p, m)
			g.Expect(out).To(MatchRegexp(`"(httproute-)?ns`), "%s %s: the query selects the canary's namespace", p, m)
			g.Expect(out).To(ContainSubstring("[1m]"), "%s %s", p, m)
		}
	}
	_, err := r.BuiltinQuery("linkerd", "request-success-rate")
	g.Expect(err).To(MatchError("provider linkerd has no builtin metric request-success-rate: measure it with a MetricTemplate (templateRef)"))
	_, err = r.BuiltinQuery("istio", "error-rate")
	g.Expect(err).To(MatchError("error-rate is not a builtin metric of provider istio: use request-duration, request-success-rate or a MetricTemplate"))
}

// TestBuiltinQuery_MeasuresTheCanary: each router's queries name the canary
// (its workload, Service or backend), never the primary alone, so that a
// healthy primary cannot hide a failing canary.
func TestBuiltinQuery_MeasuresTheCanary(t *testing.T) {
	g := NewWithT(t)
	for name, qs := range map[string]map[string]string{"kubernetes": kubernetes.Metrics, "traefik": traefik.Metrics,
		"istio": istio.Metrics, "gatewayapi": gatewayapi.Metrics} {
		for m, q := range qs {
			out, err := metrics.Render(q, metrics.Model{Namespace: "ns", Target: "web", Service: "web", Route: "web", Interval: time.Minute})
			g.Expect(err).NotTo(HaveOccurred())
			switch name {
			case "traefik", "gatewayapi":
				g.Expect(out).To(ContainSubstring("ns-web-canary-"), "%s %s", name, m)
			default:
				g.Expect(out).To(ContainSubstring(`"web`), "%s %s", name, m)
			}
		}
	}
}
