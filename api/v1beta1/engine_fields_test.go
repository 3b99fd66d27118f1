package v1beta1

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCanary_EngineOwnedFields(t *testing.T) {
	canary := func(kind, provider string) *Canary {
		return &Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}, Spec: CanarySpec{
			Provider: provider, TargetRef: TargetReference{Kind: kind, Name: "web"}, Service: CanaryService{Name: "front"}}}
	}
	kinds := func(fs []OwnedFields) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Kind+"/"+f.Name)
		}
		return out
	}
	tests := []struct {
		name            string
		canary          *Canary
		defaultProvider string
		want            []string
	}{
		{"kubernetes", canary("Deployment", ProviderKubernetes), "", []string{"Deployment/web", "Service/front"}},
		{"gatewayapi alias", canary("Deployment", ProviderGatewayAPIV1), "", []string{"Deployment/web", "Service/front", "HTTPRoute/front"}},
		{"gatewayapi GRPCRoute", withGateway(canary("Deployment", ProviderGatewayAPI), &GatewayAPIRouting{RouteKind: GatewayRouteKindGRPC}), "",
			[]string{"Deployment/web", "Service/front", "GRPCRoute/front"}},
		{"gatewayapi user-owned route: its rules are the user's", withGateway(canary("Deployment", ProviderGatewayAPI), &GatewayAPIRouting{RouteRef: &GatewayRouteReference{Name: "front"}}), "",
			[]string{"Deployment/web", "Service/front"}},
		{"istio from the default provider", canary("DaemonSet", ""), ProviderIstio,
			[]string{"DaemonSet/web", "Service/front", "VirtualService/front", "DestinationRule/front-primary", "DestinationRule/front-canary"}},
		{"no provider anywhere: every routing kind", canary("Deployment", ""), "",
			[]string{"Deployment/web", "Service/front", "VirtualService/front", "DestinationRule/front-primary", "DestinationRule/front-canary",
				"TraefikService/front", "HTTPRoute/front", "TrafficSplit/front", "MeshHTTPRoute/front", "RouteTable/front"}},
		{"istio with a baseline", withBaseline(canary("Deployment", ProviderIstio)), "",
			[]string{"Deployment/web", "Service/front", "VirtualService/front", "DestinationRule/front-primary", "DestinationRule/front-canary", "DestinationRule/front-baseline"}},
		{"linkerd", canary("Deployment", "linkerd"), "", []string{"Deployment/web", "Service/front", "HTTPRoute/front"}},
		{"smi", canary("Deployment", "smi:v1alpha2"), "", []string{"Deployment/web", "Service/front", "TrafficSplit/front"}},
		{"kuma", canary("Deployment", "kuma"), "", []string{"Deployment/web", "Service/front", "MeshHTTPRoute/front"}},
		{"gloo", canary("Deployment", "gloo"), "", []string{"Deployment/web", "Service/front", "RouteTable/front"}},
		{"apisix: its route is its own", canary("Deployment", "apisix"), "", []string{"Deployment/web", "Service/front"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := tt.canary.EngineOwnedFields(tt.defaultProvider)
			g.Expect(kinds(got)).To(Equal(tt.want))
			for _, f := range got {
				g.Expect(f.Namespace).To(Equal("apps"))
				g.Expect(f.Paths).NotTo(BeEmpty())
			}
		})
	}
	sts := canary("StatefulSet", ProviderKubernetes).EngineOwnedFields("")
	NewWithT(t).Expect(sts[0]).To(Equal(OwnedFields{Group: "apps", Kind: "StatefulSet", Namespace: "apps", Name: "web", Paths: []string{"/spec/replicas"}}))
	ds := canary("DaemonSet", ProviderKubernetes).EngineOwnedFields("")
	NewWithT(t).Expect(ds[0].Paths).To(Equal([]string{"/spec/template/spec/nodeSelector/sluice.dev~1scale-to-zero"}))
}

func withGateway(c *Canary, g *GatewayAPIRouting) *Canary {
	c.Spec.Service.GatewayAPI = g
	return c
}

func withBaseline(c *Canary) *Canary {
	c.Spec.Analysis = &CanaryAnalysis{Baseline: true}
	return c
}
