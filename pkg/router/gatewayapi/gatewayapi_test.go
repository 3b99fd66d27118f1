package gatewayapi_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// setup creates a namespace with the Services and a router for a Canary with
// every feature the HTTPRoute carries.
func setup(t *testing.T, provider string) (*sluicev1beta1.Canary, router.Router) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "gwapi")
	g.Expect(err).NotTo(HaveOccurred())
	c := testCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Provider = provider
	c.Spec.Service.BackendTimeout = "10s"
	c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}}}
	c.Spec.Service.Rewrite = &sluicev1beta1.HTTPRewrite{URI: "/v2", Authority: "internal.example.com"}
	c.Spec.Service.CorsPolicy = &sluicev1beta1.CorsPolicy{AllowOrigin: []string{"https://app.example.com"}, AllowMethods: []string{"GET", "POST"}, MaxAge: "1h"}
	c.Spec.Service.Apex = &sluicev1beta1.CustomMetadata{Labels: map[string]string{"tier": "web"}, Annotations: map[string]string{"example.com/route": "apex"}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50,
		SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "sticky", PrimaryCookieName: "stay", MaxAge: 600, SameSite: "Strict", Secure: true}}
	c.Status.SessionAffinityCookie = "sticky=abc"
	c.Status.PrimarySessionAffinityCookie = "stay=def"
	c.Status.PreviousSessionAffinityCookie = "sticky=old"
	g.Expect(prepare(ctx, env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	rt, err := reg.New(provider, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

func live(g Gomega, c *sluicev1beta1.Canary) *gatewayv1.HTTPRoute {
	route := &gatewayv1.HTTPRoute{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: c.Namespace, Name: "app"}, route)).To(Succeed())
	return route
}

// TestRouter_IdleCostsNoWrites checks that the API server accepts the full
// route (CEL validation included) and that an unchanged route is not written.
func TestRouter_IdleCostsNoWrites(t *testing.T) {
	for _, provider := range []string{"gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1"} {
		t.Run(provider, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			c, rt := setup(t, provider)
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			for _, r := range []router.Routes{{PrimaryWeight: 70, CanaryWeight: 30}, {PrimaryWeight: 100}, {PrimaryWeight: 100, Mirrored: true}} {
				g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed())
				rv := live(g, c).ResourceVersion
				g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
				g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed())
				g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
				g.Expect(live(g, c).ResourceVersion).To(Equal(rv), "an unchanged route was written at %s", r)
				g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r))
			}
			route := live(g, c)
			g.Expect(route.Labels).To(HaveKeyWithValue("tier", "web"))
			g.Expect(route.Annotations).To(HaveKeyWithValue("example.com/route", "apex"))
			g.Expect(route.OwnerReferences).To(HaveLen(1))
		})
	}
}

// TestRouter_KeepsUserRules checks that a rule a user adds to the route
// survives every step, and a change to a Sluice rule is repaired.
func TestRouter_KeepsUserRules(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, "gatewayapi")
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10})).To(Succeed())
	route := live(g, c)
	route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{
		Name:        ptr(gatewayv1.SectionName("legacy")),
		Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/legacy")}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "app", Port: ptr(gatewayv1.PortNumber(80))}}}},
	})
	// A hand edit of a Sluice rule (its timeouts dropped) is put back.
	for i := range route.Spec.Rules {
		if route.Spec.Rules[i].Name != nil && *route.Spec.Rules[i].Name == gatewayapi.RuleWeighted {
			route.Spec.Rules[i].Timeouts = nil
		}
	}
	g.Expect(env.Client.Update(ctx, route)).To(Succeed())
	for _, r := range []router.Routes{{PrimaryWeight: 50, CanaryWeight: 50}, {PrimaryWeight: 100}} {
		g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed())
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		var names []string
		for _, rule := range live(g, c).Spec.Rules {
			names = append(names, string(*rule.Name))
			if *rule.Name == gatewayapi.RuleWeighted {
				g.Expect(rule.Timeouts).NotTo(BeNil())
			}
		}
		g.Expect(names).To(ContainElement("legacy"))
		g.Expect(names[len(names)-1]).To(Equal("legacy"))
	}
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
}

// TestRouter_ABTestingOnTheAPIServer applies the A/B rules with a rewrite
// (ReplacePrefixMatch needs one PathPrefix match per rule).
func TestRouter_ABTestingOnTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, "gatewayapi")
	c.Spec.Service.Match = nil
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
	rules := live(g, c).Spec.Rules
	g.Expect(rules).To(HaveLen(2))
	g.Expect(string(*rules[0].Name)).To(Equal(gatewayapi.RuleAB))
	g.Expect(rules[0].Matches[0].Headers).To(HaveLen(1))
	g.Expect(string(*rules[1].Name)).To(Equal(gatewayapi.RuleDefault))
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{CanaryWeight: 100}))
}

func TestRouter_NeedsGatewayRefs(t *testing.T) {
	g := NewWithT(t)
	c, rt := setup(t, "gatewayapi")
	c.Spec.Service.GatewayRefs = nil
	g.Expect(rt.Reconcile(context.Background(), c)).To(MatchError(ContainSubstring("spec.service.gatewayRefs")))
}
