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
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// userRoute is the HTTPRoute a user keeps in Git: a rule to the apex
// Service with filters (a header modifier and an extensionRef) and
// timeouts, a rule to another Service, and a second rule to the apex
// Service on its metrics port (multi-port). header is the value the first
// rule's header filter sets, so a test can change the manifest.
func userRoute(ns, header string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "shop", "namespace": ns, "labels": map[string]any{"team": "web"}},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public", "namespace": "gateway", "sectionName": "https"}},
			"hostnames":  []any{"shop.example.com"},
			"rules": []any{
				map[string]any{
					"name":    "api",
					"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/api"}}},
					"filters": []any{
						map[string]any{"type": "RequestHeaderModifier", "requestHeaderModifier": map[string]any{"set": []any{map[string]any{"name": "x-tier", "value": header}}}},
						map[string]any{"type": "ExtensionRef", "extensionRef": map[string]any{"group": "gateway.example.com", "kind": "SnippetsFilter", "name": "auth"}},
					},
					"timeouts":    map[string]any{"request": "30s"},
					"backendRefs": []any{map[string]any{"name": "app", "port": int64(80)}},
				},
				map[string]any{
					"name":        "legacy",
					"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/legacy"}}},
					"backendRefs": []any{map[string]any{"name": "legacy", "port": int64(8080)}},
				},
				map[string]any{
					"name":        "metrics",
					"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/metrics"}}},
					"backendRefs": []any{map[string]any{"name": "app", "port": int64(9090)}},
				},
			},
		},
	}}
}

// applyAsUser applies the user's manifest with server-side apply, as
// GitSync or kubectl apply --server-side does (another field manager, force).
func applyAsUser(ctx context.Context, u *unstructured.Unstructured) error {
	return env.Client.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership) //nolint:staticcheck // client.Apply on unstructured, as the tests elsewhere
}

func refCanary(ns string) *sluicev1beta1.Canary {
	c := testCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000004"
	c.Spec.Service = sluicev1beta1.CanaryService{Port: 80,
		GatewayAPI: &sluicev1beta1.GatewayAPIRouting{RouteRef: &sluicev1beta1.GatewayRouteReference{Name: "shop"}}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	return c
}

func refSetup(t *testing.T) (*sluicev1beta1.Canary, router.Router) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "gwapi-ref")
	g.Expect(err).NotTo(HaveOccurred())
	c := refCanary(ns)
	g.Expect(prepare(ctx, env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	rt, err := reg.New(gatewayapi.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(router.Unsupported(rt, c, gatewayapi.Name)).To(BeEmpty())
	return c, rt
}

func shop(g Gomega, ns string) *gatewayv1.HTTPRoute {
	route := &gatewayv1.HTTPRoute{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "shop"}, route)).To(Succeed())
	return route
}

// backendsOf lists a rule's backendRefs as name:port=weight.
func backendsOf(rule gatewayv1.HTTPRouteRule) []string {
	var out []string
	for _, b := range rule.BackendRefs {
		s := string(b.Name)
		if b.Port != nil {
			s += ":" + itoa(int32(*b.Port))
		}
		if b.Weight != nil {
			s += "=" + itoa(*b.Weight)
		}
		out = append(out, s)
	}
	return out
}

func itoa(i int32) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestRouteRef_WholeRelease drives a user-owned HTTPRoute through a whole
// release and its finalisation: only the backendRefs of the rules that send
// to the apex Service change (on both of its ports), everything else of the
// user's route is untouched at every step, and at rest and after Finalize
// the route is exactly what the user applied.
func TestRouteRef_WholeRelease(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := refSetup(t)
	g.Expect(applyAsUser(ctx, userRoute(c.Namespace, "gold"))).To(Succeed())
	before := shop(g, c.Namespace)

	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
	atRest := shop(g, c.Namespace)
	g.Expect(atRest.Spec).To(Equal(before.Spec), "at rest the route is the user's")
	g.Expect(atRest.Labels).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "app"))
	g.Expect(atRest.Labels).To(HaveKeyWithValue("team", "web"))

	for _, step := range []router.Routes{{PrimaryWeight: 90, CanaryWeight: 10}, {PrimaryWeight: 50, CanaryWeight: 50}, {CanaryWeight: 100}} {
		g.Expect(rt.SetRoutes(ctx, c, step)).To(Succeed())
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed(), "Reconcile keeps the weights in flight")
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(step))
		live := shop(g, c.Namespace)
		p, cw := itoa(step.PrimaryWeight), itoa(step.CanaryWeight)
		g.Expect(backendsOf(live.Spec.Rules[0])).To(Equal([]string{"app-primary:80=" + p, "app-canary:80=" + cw}))
		g.Expect(backendsOf(live.Spec.Rules[2])).To(Equal([]string{"app-primary:9090=" + p, "app-canary:9090=" + cw}), "every port of the apex Service is routed")
		g.Expect(live.Spec.Rules[1]).To(Equal(before.Spec.Rules[1]), "a rule to another Service is untouched")
		for i := range live.Spec.Rules {
			want := before.Spec.Rules[i].DeepCopy()
			want.BackendRefs = live.Spec.Rules[i].BackendRefs
			g.Expect(live.Spec.Rules[i]).To(Equal(*want), "rule %d changed beyond its backendRefs", i)
		}
		g.Expect(live.Spec.ParentRefs).To(Equal(before.Spec.ParentRefs))
		g.Expect(live.Spec.Hostnames).To(Equal(before.Spec.Hostnames))
	}

	// Promotion done: back to the apex Service, the user's route again.
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100})).To(Succeed())
	g.Expect(shop(g, c.Namespace).Spec).To(Equal(before.Spec))
	rv := shop(g, c.Namespace).ResourceVersion
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100})).To(Succeed())
	g.Expect(shop(g, c.Namespace).ResourceVersion).To(Equal(rv), "an unchanged route is not written")

	// A rollback mid-release, then the Canary is deleted.
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	for range 2 { // Finalize is idempotent
		g.Expect(rt.Finalize(ctx, c)).To(Succeed())
		after := shop(g, c.Namespace)
		g.Expect(after.Spec).To(Equal(before.Spec), "Finalize sends the rules to the apex Service and leaves the rest")
		g.Expect(after.Labels).NotTo(HaveKey(sluicev1beta1.CanaryLabel))
		g.Expect(after.Labels).To(HaveKeyWithValue("team", "web"))
	}
}

// TestRouteRef_UserAndSluiceWriteInEitherOrder: the user's applies and
// Sluice's swaps interleave without losing the other's fields.
func TestRouteRef_UserAndSluiceWriteInEitherOrder(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := refSetup(t)
	g.Expect(applyAsUser(ctx, userRoute(c.Namespace, "gold"))).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())

	// Sluice first, then the user: GitSync applies a changed manifest
	// mid-release. Its rules win (to the apex Service: primary 100%) with
	// the new filter; the route still carries Sluice's label (the change
	// enqueues the Canary), the engine reads primary 100% and sets the
	// step's weights again, on the user's new rules.
	g.Expect(applyAsUser(ctx, userRoute(c.Namespace, "platinum"))).To(Succeed())
	live := shop(g, c.Namespace)
	g.Expect(live.Labels).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "app"))
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	live = shop(g, c.Namespace)
	g.Expect(backendsOf(live.Spec.Rules[0])).To(Equal([]string{"app-primary:80=70", "app-canary:80=30"}))
	g.Expect(live.Spec.Rules[0].Filters[0].RequestHeaderModifier.Set[0].Value).To(Equal("platinum"))

	// A server-side apply of the same manifest again (with force) makes
	// the rules the manifest's: primary 100%, which the next step heals.
	g.Expect(applyAsUser(ctx, userRoute(c.Namespace, "platinum"))).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 70, CanaryWeight: 30}))

	// The user first, then Sluice: a hand edit of the live route (a new
	// rule and a longer timeout) survives the next step.
	live = shop(g, c.Namespace)
	live.Spec.Rules[0].Timeouts.Request = ptr(gatewayv1.Duration("45s"))
	live.Spec.Rules = append(live.Spec.Rules, gatewayv1.HTTPRouteRule{
		Name:        ptr(gatewayv1.SectionName("docs")),
		Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/docs")}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "docs", Port: ptr(gatewayv1.PortNumber(80))}}}},
	})
	g.Expect(env.Client.Update(ctx, live)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 50, CanaryWeight: 50})).To(Succeed())
	live = shop(g, c.Namespace)
	g.Expect(live.Spec.Rules).To(HaveLen(4))
	g.Expect(string(*live.Spec.Rules[3].Name)).To(Equal("docs"))
	g.Expect(string(*live.Spec.Rules[0].Timeouts.Request)).To(Equal("45s"))
	g.Expect(backendsOf(live.Spec.Rules[0])).To(Equal([]string{"app-primary:80=50", "app-canary:80=50"}))
	g.Expect(live.Spec.Rules[0].Filters).To(HaveLen(2))
}

// TestRouteRef_Errors: a routeRef Sluice cannot use is an error that says
// what to fix (the engine shows it as Ready=False), and what a user-owned
// route cannot do is reported as unsupported (Stalled).
func TestRouteRef_Errors(t *testing.T) {
	ctx := context.Background()
	t.Run("route missing", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := refSetup(t)
		g.Expect(rt.Reconcile(ctx, c)).To(MatchError(And(ContainSubstring("spec.service.gatewayAPI.routeRef: HTTPRoute shop not found in namespace "+c.Namespace),
			ContainSubstring("apex Service app"))))
		_, err := rt.GetRoutes(ctx, c)
		g.Expect(err).To(MatchError(ContainSubstring("not found")))
		g.Expect(rt.Finalize(ctx, c)).To(Succeed(), "nothing to restore")
	})
	t.Run("no rule to the apex Service", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := refSetup(t)
		u := userRoute(c.Namespace, "gold")
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		g.Expect(unstructured.SetNestedSlice(u.Object, rules[1:2], "spec", "rules")).To(Succeed())
		g.Expect(applyAsUser(ctx, u)).To(Succeed())
		g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("HTTPRoute shop (spec.service.gatewayAPI.routeRef) has no rule whose backendRef is the apex Service app")))
		g.Expect(shop(g, c.Namespace).Labels).NotTo(HaveKey(sluicev1beta1.CanaryLabel), "nothing written")
	})
	t.Run("apex shares a rule with another backend", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := refSetup(t)
		u := userRoute(c.Namespace, "gold")
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		rules[0].(map[string]any)["backendRefs"] = []any{map[string]any{"name": "app", "port": int64(80), "weight": int64(80)}, map[string]any{"name": "legacy", "port": int64(8080), "weight": int64(20)}}
		g.Expect(unstructured.SetNestedSlice(u.Object, rules, "spec", "rules")).To(Succeed())
		g.Expect(applyAsUser(ctx, u)).To(Succeed())
		g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("rule 0 of HTTPRoute shop sends to the apex Service app together with other backends")))
	})
	t.Run("unsupported", func(t *testing.T) {
		reg := router.NewRegistry()
		gatewayapi.Register(reg)
		rt, _ := reg.New(gatewayapi.Name, nil)
		for _, tc := range []struct {
			name   string
			mutate func(*sluicev1beta1.Canary)
			want   string
		}{
			{"A/B", func(c *sluicev1beta1.Canary) {
				c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 2, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x": {Exact: "y"}}}}}
			}, "cannot route by request match"},
			{"mirror", func(c *sluicev1beta1.Canary) {
				c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 2, Mirror: true}
			}, "cannot mirror traffic"},
			{"session affinity", func(c *sluicev1beta1.Canary) {
				c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "s"}
			}, "has no session affinity"},
			{"baseline", func(c *sluicev1beta1.Canary) {
				c.Spec.Analysis.Baseline = true
			}, "routeRef cannot split traffic three ways"},
			{"generated-route fields", func(c *sluicev1beta1.Canary) {
				c.Spec.Service.Hosts = []string{"a.example.com"}
				c.Spec.Service.Timeout = "10s"
			}, "spec.service.hosts and spec.service.timeout shape a generated route"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := NewWithT(t)
				c := refCanary("ns")
				tc.mutate(c)
				g.Expect(router.Unsupported(rt, c, gatewayapi.Name)).To(ContainElement(ContainSubstring(tc.want)))
			})
		}
	})
}
