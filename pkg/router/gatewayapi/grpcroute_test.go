package gatewayapi_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// grpcCanary is a Canary with routeKind GRPCRoute and what a GRPCRoute
// carries: a gRPC service match and header operations.
func grpcCanary(ns string) *sluicev1beta1.Canary {
	c := testCanary(ns)
	c.Spec.Service.Timeout = "" // a GRPCRoute has no timeouts
	c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteKind: sluicev1beta1.GatewayRouteKindGRPC}
	c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/shop.v1.Cart/"}}}
	return c
}

// TestConformance_GRPCRoute runs the router suite for routeKind GRPCRoute
// on the API server with the standard-channel GRPCRoute CRD.
func TestConformance_GRPCRoute(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    gatewayapi.Name,
		Register:    func(r *router.Registry) { gatewayapi.Register(r) },
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.SessionAffinity, conformance.Baseline},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "grpc-conformance") },
		Canary:      grpcCanary,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: gatewayapi.GRPCGVK, Name: "app"}}
		},
		Prepare:  prepare,
		HandEdit: grpcHandEdit,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			u := original(c)
			u.SetKind("GRPCRoute")
			return u
		},
		Backends: backends,
	})
}

// grpcHandEdit sets the weights of Sluice's GRPCRoute rule as kubectl edit would.
func grpcHandEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	route := &gatewayv1.GRPCRoute{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, route); err != nil {
		return err
	}
	for i, rule := range route.Spec.Rules {
		if rule.Name == nil || (*rule.Name != gatewayapi.RuleWeighted && *rule.Name != gatewayapi.RuleAB) {
			continue
		}
		for j, b := range rule.BackendRefs {
			switch b.Name {
			case "app-primary":
				route.Spec.Rules[i].BackendRefs[j].Weight = ptr(r.PrimaryWeight)
			case "app-canary":
				route.Spec.Rules[i].BackendRefs[j].Weight = ptr(r.CanaryWeight)
			}
		}
	}
	return c.Update(ctx, route)
}

// TestGRPCRoute_MatchesOnTheAPIServer applies an A/B GRPCRoute with method
// and header matches (the CRD's CEL rules included) and reads it back.
func TestGRPCRoute_MatchesOnTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "grpc")
	g.Expect(err).NotTo(HaveOccurred())
	c := grpcCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000003"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
		{URI: &sluicev1beta1.StringMatch{Exact: "/shop.v1.Cart/Checkout"}, Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}},
		{Headers: map[string]sluicev1beta1.StringMatch{"x-user": {Prefix: "qa-"}}},
	}}
	g.Expect(prepare(ctx, env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	rt, err := reg.New(gatewayapi.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(router.Unsupported(rt, c, gatewayapi.Name)).To(BeEmpty())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{CanaryWeight: 100}))

	route := &gatewayv1.GRPCRoute{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, route)).To(Succeed())
	g.Expect(route.Spec.Rules).To(HaveLen(2))
	ab := route.Spec.Rules[0]
	g.Expect(string(*ab.Name)).To(Equal(gatewayapi.RuleAB))
	g.Expect(ab.Matches).To(HaveLen(2))
	g.Expect(*ab.Matches[0].Method).To(Equal(gatewayv1.GRPCMethodMatch{Type: ptr(gatewayv1.GRPCMethodMatchExact), Service: ptr("shop.v1.Cart"), Method: ptr("Checkout")}))
	g.Expect(ab.Matches[0].Headers).To(Equal([]gatewayv1.GRPCHeaderMatch{{Type: ptr(gatewayv1.GRPCHeaderMatchExact), Name: "x-canary", Value: "insider"}}))
	// The second analysis match keeps the service's method match.
	g.Expect(*ab.Matches[1].Method).To(Equal(gatewayv1.GRPCMethodMatch{Type: ptr(gatewayv1.GRPCMethodMatchExact), Service: ptr("shop.v1.Cart")}))
	g.Expect(ab.Matches[1].Headers).To(Equal([]gatewayv1.GRPCHeaderMatch{{Type: ptr(gatewayv1.GRPCHeaderMatchRegularExpression), Name: "x-user", Value: `^qa-.*`}}))
	g.Expect(ab.Filters).To(HaveLen(2), "the request and response header modifiers")
	def := route.Spec.Rules[1]
	g.Expect(string(*def.Name)).To(Equal(gatewayapi.RuleDefault))
	g.Expect(def.BackendRefs).To(HaveLen(1))
	g.Expect(string(def.BackendRefs[0].Name)).To(Equal("app-primary"))

	// Unchanged routes cost no write.
	rv := route.ResourceVersion
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, route)).To(Succeed())
	g.Expect(route.ResourceVersion).To(Equal(rv))
	// No HTTPRoute is written for a GRPCRoute Canary.
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &gatewayv1.HTTPRoute{})).NotTo(Succeed())
}

// TestGRPCRoute_Unsupported: what a GRPCRoute cannot express stalls the
// Canary with a message naming the field.
func TestGRPCRoute_Unsupported(t *testing.T) {
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	rt, err := reg.New(gatewayapi.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*sluicev1beta1.Canary)
		want   string
	}{
		{"timeout", func(c *sluicev1beta1.Canary) { c.Spec.Service.Timeout = "10s" }, "a GRPCRoute has no request timeouts"},
		{"rewrite", func(c *sluicev1beta1.Canary) { c.Spec.Service.Rewrite = &sluicev1beta1.HTTPRewrite{URI: "/"} }, "remove spec.service.rewrite"},
		{"cors", func(c *sluicev1beta1.Canary) { c.Spec.Service.CorsPolicy = &sluicev1beta1.CorsPolicy{} }, "no CORS filter"},
		{"session affinity", func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "s"}
		}, "has no session affinity"},
		{"http method", func(c *sluicev1beta1.Canary) {
			c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{Method: &sluicev1beta1.StringMatch{Exact: "GET"}}}
		}, "cannot match the HTTP method"},
		{"uri not a method", func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Exact: "/healthz"}}}
		}, `uri exact "/healthz" is not a gRPC method`},
		{"query params", func(c *sluicev1beta1.Canary) {
			c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{QueryParams: map[string]sluicev1beta1.StringMatch{"a": {Exact: "b"}}}}
		}, "cannot match query parameters"},
		{"baseline", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Baseline = true }, "with routeKind GRPCRoute cannot split traffic three ways"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := grpcCanary("ns")
			c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
			g.Expect(router.Unsupported(rt, c, gatewayapi.Name)).To(BeEmpty())
			tc.mutate(c)
			g.Expect(router.Unsupported(rt, c, gatewayapi.Name)).To(ContainElement(ContainSubstring(tc.want)))
		})
	}
}
