package gatewayapi

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Given a Canary whose Services carry several ports (portDiscovery), the
// generated HTTPRoute and GRPCRoute reject it with a message saying why and
// what to do; a user-owned route (routeRef) splits each port and accepts it;
// a single-port Canary is accepted by every variant.
func TestMultiPort_Unsupported(t *testing.T) {
	rt := New(nil)
	for _, tc := range []struct {
		name      string
		discovery bool
		edit      func(*sluicev1beta1.Canary)
		rejected  bool
	}{
		{name: "generated HTTPRoute, one port"},
		{name: "generated HTTPRoute, portDiscovery", discovery: true, rejected: true},
		{name: "generated GRPCRoute, portDiscovery", discovery: true, rejected: true, edit: func(c *sluicev1beta1.Canary) {
			c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteKind: sluicev1beta1.GatewayRouteKindGRPC}
		}},
		{name: "routeRef, portDiscovery", discovery: true, edit: func(c *sluicev1beta1.Canary) {
			c.Spec.Service.GatewayRefs = nil
			c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteRef: &sluicev1beta1.GatewayRouteReference{Name: "shop"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := canary()
			c.Spec.Service.PortDiscovery = tc.discovery
			if tc.edit != nil {
				tc.edit(c)
			}
			got := router.Unsupported(rt, c, Name)
			if !tc.rejected {
				g.Expect(got).To(BeEmpty())
				return
			}
			g.Expect(got).To(ContainElement(And(
				ContainSubstring("provider gatewayapi generates one route whose rules apply to every listener"),
				ContainSubstring("set spec.service.gatewayAPI.routeRef to an HTTPRoute you own with a rule per port"),
				ContainSubstring("or remove portDiscovery"))))
		})
	}
}
