package gatewayapi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// TestImplementationMetrics_Golden renders the builtin queries of every
// implementation that has them and compares them with
// testdata/metrics/<implementation>-<metric>.promql (go test -update
// rewrites them). Each query must select the canary only.
func TestImplementationMetrics_Golden(t *testing.T) {
	model := metrics.Model{Name: "web", Namespace: "shop", Target: "web", Service: "web", Route: "web", Interval: time.Minute}
	withQueries := 0
	for _, impl := range gatewayapi.Implementations {
		reg := router.NewRegistry()
		gatewayapi.Register(reg, gatewayapi.WithImplementation(impl))
		qs, why := gatewayapi.MetricsOf(impl)
		if qs == nil {
			t.Run(string(impl)+"-none", func(t *testing.T) {
				g := NewWithT(t)
				g.Expect(why).NotTo(BeEmpty())
				for _, m := range []string{sluicev1beta1.MetricRequestSuccessRate, sluicev1beta1.MetricRequestDuration} {
					_, err := reg.BuiltinQuery("gatewayapi", m)
					g.Expect(err).To(MatchError(And(ContainSubstring("measure it with a MetricTemplate"),
						ContainSubstring("--gateway-api-implementation="+string(impl)), ContainSubstring(why))))
				}
			})
			continue
		}
		withQueries++
		for _, m := range []string{sluicev1beta1.MetricRequestSuccessRate, sluicev1beta1.MetricRequestDuration} {
			t.Run(string(impl)+"-"+m, func(t *testing.T) {
				g := NewWithT(t)
				for _, provider := range []string{"gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1"} {
					q, err := reg.BuiltinQuery(provider, m)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(q).To(Equal(qs[m]))
				}
				out, err := metrics.Render(qs[m], model)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out).To(ContainSubstring("[1m]"))
				g.Expect(out).To(MatchRegexp(`"(httproute-)?shop`), "the query selects the canary's namespace")
				g.Expect(out).To(Or(ContainSubstring("web-canary"), ContainSubstring(`destination_workload="web"`)), "the query selects the canary")
				g.Expect(out).NotTo(ContainSubstring("web-primary"))
				file := filepath.Join("testdata", "metrics", string(impl)+"-"+m+".promql")
				if *update {
					g.Expect(os.WriteFile(file, []byte(out+"\n"), 0o644)).To(Succeed())
				}
				want, err := os.ReadFile(file)
				g.Expect(err).NotTo(HaveOccurred(), "run go test -update to write %s", file)
				g.Expect(out + "\n").To(Equal(string(want)))
			})
		}
	}
	if withQueries != 3 {
		t.Fatalf("traefik, istio and cilium have builtin queries; got %d implementations with queries", withQueries)
	}
}

// TestImplementationMetrics_DefaultIsTraefik keeps the queries the e2e
// scenarios measure live when no implementation is given.
func TestImplementationMetrics_DefaultIsTraefik(t *testing.T) {
	g := NewWithT(t)
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	q, err := reg.BuiltinQuery("gatewayapi", sluicev1beta1.MetricRequestSuccessRate)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(q).To(Equal(gatewayapi.Metrics[sluicev1beta1.MetricRequestSuccessRate]))
	g.Expect(q).To(ContainSubstring("traefik_service_requests_total"))
}

func TestParseImplementation(t *testing.T) {
	g := NewWithT(t)
	for _, impl := range gatewayapi.Implementations {
		got, err := gatewayapi.ParseImplementation(string(impl))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(impl))
	}
	_, err := gatewayapi.ParseImplementation("Envoy")
	g.Expect(err).To(MatchError(`unknown Gateway API implementation "Envoy": use one of traefik, envoy-gateway, istio, cilium, kong, nginx-gateway-fabric`))
}

// TestImplementationMetrics_CheckIsAConfigurationError runs a builtin metric
// through the metrics checker with an implementation that has no
// per-backend series: the check is an UnsupportedProvider error (the engine
// turns it into MetricsReady=False, MetricConfigurationInvalid, and does
// not count it as a failed check), never a NoData result that would fail a
// healthy release.
func TestImplementationMetrics_CheckIsAConfigurationError(t *testing.T) {
	g := NewWithT(t)
	reg := router.NewRegistry()
	gatewayapi.Register(reg, gatewayapi.WithImplementation(gatewayapi.ImplementationEnvoyGateway))
	k := &metrics.Checker{Builtins: reg, DefaultAddress: "http://127.0.0.1:1"}
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: sluicev1beta1.CanarySpec{
		Provider:  "gatewayapi:v1",
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		Service:   sluicev1beta1.CanaryService{Port: 80},
	}}
	res := k.Check(context.Background(), c, "gatewayapi:v1", sluicev1beta1.CanaryMetric{Name: sluicev1beta1.MetricRequestSuccessRate})
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonUnsupportedProvider))
	g.Expect(res.Message).To(And(ContainSubstring("Envoy Gateway"), ContainSubstring("MetricTemplate")))
	g.Expect(res.Held).To(BeFalse())
}
