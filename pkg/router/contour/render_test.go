package contour_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/contour"
)

// A/B testing: the header-matched route follows the weights, the default
// route stays on the primary; policies come from spec.service; a route
// users added is kept after Sluice's. The API server validates the result
// against Contour's CRD.
func TestRender_ABTesting(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "contour")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{
		"x-canary": {Exact: "insider"}, "user-agent": {Regex: ".*Firefox.*"}}}}}
	rt := &contour.Router{}
	g.Expect(rt.CheckSpec(c)).To(BeEmpty())
	reg := router.NewRegistry()
	contour.Register(reg)
	r, err := reg.New(contour.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Reconcile(ctx, c)).To(Succeed())

	// A user adds a route of their own.
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(contour.GVK)
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)).To(Succeed())
	routes, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	routes = append(routes, map[string]any{"conditions": []any{map[string]any{"prefix": "/static"}},
		"services": []any{map[string]any{"name": "static", "port": int64(80)}}})
	g.Expect(unstructured.SetNestedSlice(live.Object, routes, "spec", "routes")).To(Succeed())
	g.Expect(env.Client.Update(ctx, live)).To(Succeed())

	g.Expect(r.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)).To(Succeed())
	routes, _, _ = unstructured.NestedSlice(live.Object, "spec", "routes")
	g.Expect(routes).To(HaveLen(3))
	ab := routes[0].(map[string]any)
	g.Expect(ab["conditions"]).To(Equal([]any{
		map[string]any{"prefix": "/api"},
		map[string]any{"header": map[string]any{"name": "user-agent", "regex": ".*Firefox.*"}},
		map[string]any{"header": map[string]any{"name": "x-canary", "exact": "insider"}},
	}))
	g.Expect(ab["timeoutPolicy"]).To(Equal(map[string]any{"response": "30s", "idle": "5m"}))
	g.Expect(ab["retryPolicy"]).To(Equal(map[string]any{"count": int64(3), "perTryTimeout": "5s", "retryOn": []any{"5xx", "gateway-error"}}))
	weights := func(route any) map[string]any {
		out := map[string]any{}
		for _, s := range route.(map[string]any)["services"].([]any) {
			m := s.(map[string]any)
			out[m["name"].(string)] = m["weight"]
			g.Expect(m["requestHeadersPolicy"]).To(HaveKey("set"))
		}
		return out
	}
	g.Expect(weights(routes[0])).To(Equal(map[string]any{"app-primary": int64(0), "app-canary": int64(100)}))
	g.Expect(weights(routes[1])).To(Equal(map[string]any{"app-primary": int64(100), "app-canary": int64(0)}))
	g.Expect(routes[2].(map[string]any)["conditions"]).To(Equal([]any{map[string]any{"prefix": "/static"}}))

	// Finalize keeps the user's route and sends Sluice's to the apex.
	g.Expect(r.Finalize(ctx, c)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)).To(Succeed())
	routes, _, _ = unstructured.NestedSlice(live.Object, "spec", "routes")
	g.Expect(routes).To(HaveLen(3))
	g.Expect(weights(routes[0])).To(Equal(map[string]any{"app": int64(100)}))
	g.Expect(routes[2].(map[string]any)["services"]).To(Equal([]any{map[string]any{"name": "static", "port": int64(80)}}))
	g.Expect(router.ControlledBy(live, c.UID)).To(BeFalse())
}

func TestCheckSpec(t *testing.T) {
	g := NewWithT(t)
	c := newCanary("ns")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{{QueryParams: map[string]sluicev1beta1.StringMatch{"a": {Exact: "b"}}}}}
	g.Expect(router.Unsupported(&contour.Router{}, c, contour.Name)).To(ConsistOf("provider contour matches headers only: remove analysis.match[0] fields other than headers"))
}
