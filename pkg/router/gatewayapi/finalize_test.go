package gatewayapi_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-cd/sluice/pkg/router"
)

// TestRouter_FinalizeReleasesToTheApex checks on the API server that the
// HTTPRoute Sluice created, with every feature in flight (matches, rewrite,
// CORS, sticky sessions at 70/30), is left routing only to the apex Service:
// Sluice's rules keep their matches and filters but lose the canary, the
// sticky-session rules and Set-Cookie headers; a user's rule is kept; the
// Canary's owner reference is gone; a second Finalize changes nothing.
func TestRouter_FinalizeReleasesToTheApex(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, "gatewayapi")
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	route := live(g, c)
	route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{
		Name:        ptr(gatewayv1.SectionName("users-legacy")),
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "legacy", Port: ptr(gatewayv1.PortNumber(80))}}}},
	})
	g.Expect(env.Client.Update(ctx, route)).To(Succeed())

	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	route = live(g, c)
	g.Expect(router.ControlledBy(route, c.UID)).To(BeFalse())
	g.Expect(route.Labels).To(HaveKeyWithValue("tier", "web"))
	g.Expect(route.Spec.Rules).To(HaveLen(2), "the weighted rule and the user's rule")
	main, user := route.Spec.Rules[0], route.Spec.Rules[1]
	g.Expect(string(*user.Name)).To(Equal("users-legacy"))
	g.Expect(main.Matches).NotTo(BeEmpty(), "the service match is kept")
	g.Expect(main.BackendRefs).To(HaveLen(1))
	b := main.BackendRefs[0]
	g.Expect(string(b.Name)).To(Equal("app"))
	g.Expect(*b.Port).To(Equal(gatewayv1.PortNumber(80)))
	g.Expect(*b.Weight).To(Equal(int32(100)))
	g.Expect(b.Filters).To(BeEmpty(), "no Set-Cookie of the canary")
	var types []gatewayv1.HTTPRouteFilterType
	for _, f := range main.Filters {
		types = append(types, f.Type)
		if f.ResponseHeaderModifier != nil {
			for _, h := range f.ResponseHeaderModifier.Add {
				g.Expect(string(h.Name)).NotTo(Equal("Set-Cookie"))
			}
		}
	}
	g.Expect(types).To(ContainElements(gatewayv1.HTTPRouteFilterURLRewrite, gatewayv1.HTTPRouteFilterCORS))
	g.Expect(types).NotTo(ContainElement(gatewayv1.HTTPRouteFilterRequestMirror))

	rv := route.ResourceVersion
	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	g.Expect(live(g, c).ResourceVersion).To(Equal(rv), "a released HTTPRoute is not written again")
}
