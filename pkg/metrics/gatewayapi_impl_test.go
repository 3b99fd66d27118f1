package metrics_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// Series of the Gateway API implementations, served by target (they do not
// match the other builtins' selectors, nor these the others'):
//   - Istio's gateway (reporter source): 97 of 100 to podinfo-canary succeed,
//     latencies in (10ms, 20ms] → p99 19.9ms
//   - Cilium's Hubble: 96 of 100 to workload podinfo succeed, latencies in
//     (0.05s, 0.1s] → p99 99.5ms
//   - Traefik, a user-owned HTTPRoute "shop" (routeRef): 7 of 10 succeed
const (
	gwIstio = `reporter="source",destination_service_namespace="test",destination_service_name="podinfo-canary",destination_service="podinfo-canary.test.svc.cluster.local"`
	hubble  = `destination_namespace="test",destination_workload="podinfo",method="GET",protocol="HTTP/1.1",reporter="server"`
	gwRef   = `service="httproute-test-shop-rule-0-svc-test-podinfo-canary-80@kubernetesgateway"`
)

func gatewayChecker(impl gatewayapi.Implementation) *metrics.Checker {
	r := router.NewRegistry()
	gatewayapi.Register(r, gatewayapi.WithImplementation(impl))
	return &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second, Builtins: r}
}

// TestGatewayImplementations_AgainstPrometheus runs the builtin queries of
// each Gateway implementation that has them on scraped series, through a
// real Prometheus.
func TestGatewayImplementations_AgainstPrometheus(t *testing.T) {
	tests := []struct {
		impl     gatewayapi.Implementation
		metric   string
		routeRef string
		lo, hi   *float64
		want     string
		outcome  sluicev1beta1.CheckOutcome
	}{
		{gatewayapi.ImplementationIstio, "request-success-rate", "", ptr.To(99.0), nil, "97", sluicev1beta1.CheckFailed},
		{gatewayapi.ImplementationIstio, "request-duration", "", nil, ptr.To(500.0), "19.9", sluicev1beta1.CheckPassed},
		{gatewayapi.ImplementationCilium, "request-success-rate", "", ptr.To(95.0), nil, "96", sluicev1beta1.CheckPassed},
		{gatewayapi.ImplementationCilium, "request-duration", "", nil, ptr.To(50.0), "99.5", sluicev1beta1.CheckFailed},
		// The route of a user-owned HTTPRoute is its name, not the apex's.
		{gatewayapi.ImplementationTraefik, "request-success-rate", "shop", ptr.To(60.0), nil, "70", sluicev1beta1.CheckPassed},
	}
	for _, tt := range tests {
		t.Run(string(tt.impl)+"/"+tt.metric+"/"+tt.routeRef, func(t *testing.T) {
			g := NewWithT(t)
			k := gatewayChecker(tt.impl)
			c := canary("gatewayapi")
			if tt.routeRef != "" {
				c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteRef: &sluicev1beta1.GatewayRouteReference{Name: tt.routeRef}}
			}
			res := eventually(g, func() sluicev1beta1.CheckResult {
				return k.Check(context.Background(), c, "gatewayapi", metric(tt.metric, tt.lo, tt.hi))
			})
			g.Expect(res.Outcome).To(Equal(tt.outcome), "%+v", res)
			g.Expect(res.Value).NotTo(BeNil())
			g.Expect(*res.Value).To(Equal(tt.want))
		})
	}
}

// TestGatewayImplementations_WithoutSeries: an implementation whose series
// cannot tell the canary from the primary is a configuration error
// (UnsupportedProvider, which the engine shows as MetricsReady=False), not
// NoData, even with onError or noData policies that would otherwise pass.
func TestGatewayImplementations_WithoutSeries(t *testing.T) {
	for _, impl := range []gatewayapi.Implementation{gatewayapi.ImplementationEnvoyGateway, gatewayapi.ImplementationKong, gatewayapi.ImplementationNGINXGatewayFabric} {
		t.Run(string(impl), func(t *testing.T) {
			g := NewWithT(t)
			m := metric("request-success-rate", ptr.To(99.0), nil)
			m.NoData = sluicev1beta1.PolicyPass
			res := gatewayChecker(impl).Check(context.Background(), canary("gatewayapi"), "gatewayapi", m)
			g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
			g.Expect(res.Reason).To(Equal(metrics.ReasonUnsupportedProvider))
			g.Expect(res.Message).To(ContainSubstring("--gateway-api-implementation=" + string(impl)))
			g.Expect(res.Message).To(ContainSubstring("MetricTemplate"))
			g.Expect(res.Query).To(BeEmpty(), "nothing was queried")
		})
	}
}
