package apisix_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/apisix"
)

func setup(t *testing.T) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "apisix-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	apisix.Register(reg)
	rt, err := reg.New(apisix.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

func get(g Gomega, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(apisix.GVK)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

// TestRouter_ClonesTheApexRoute checks on the API server the ApisixRoute
// Sluice writes: the user's http route to the apex, at Sluice's priority,
// with the primary and canary backends carrying the port and resolve
// granularity, the ingress class kept, and the user's route left as it was.
func TestRouter_ClonesTheApexRoute(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	userBefore := get(g, c.Namespace, "web")
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())

	live := get(g, c.Namespace, "web-app-canary")
	g.Expect(live.Object["spec"]).To(Equal(map[string]any{
		"ingressClassName": "apisix",
		"http": []any{map[string]any{
			"name":     "main",
			"priority": int64(apisix.Priority),
			"match":    map[string]any{"hosts": []any{"app.example.com"}, "paths": []any{"/*"}},
			"backends": []any{
				map[string]any{"serviceName": "app-primary", "servicePort": int64(80), "resolveGranularity": "service", "weight": int64(70)},
				map[string]any{"serviceName": "app-canary", "servicePort": int64(80), "resolveGranularity": "service", "weight": int64(30)},
			},
		}},
	}))
	g.Expect(router.ControlledBy(live, c.UID)).To(BeTrue())
	g.Expect(live.GetLabels()).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "app"))
	userAfter := get(g, c.Namespace, "web")
	g.Expect(userAfter.GetResourceVersion()).To(Equal(userBefore.GetResourceVersion()), "the user's ApisixRoute was written")
}

// TestRouter_IdleCostsNoWrite checks that reconciling an up-to-date route,
// or setting the weights it holds, writes nothing.
func TestRouter_IdleCostsNoWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	rv := get(g, c.Namespace, "web-app-canary").GetResourceVersion()
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	g.Expect(get(g, c.Namespace, "web-app-canary").GetResourceVersion()).To(Equal(rv))

	// A change to the user's route reaches Sluice's on the next reconcile.
	web := get(g, c.Namespace, "web")
	http, _, _ := unstructured.NestedSlice(web.Object, "spec", "http")
	http[1].(map[string]any)["match"] = map[string]any{"paths": []any{"/v2/*"}}
	g.Expect(unstructured.SetNestedSlice(web.Object, http, "spec", "http")).To(Succeed())
	g.Expect(env.Client.Update(ctx, web)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	got, _, _ := unstructured.NestedSlice(get(g, c.Namespace, "web-app-canary").Object, "spec", "http")
	g.Expect(got[0].(map[string]any)["match"]).To(Equal(map[string]any{"paths": []any{"/v2/*"}}))
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 60, CanaryWeight: 40}), "weights kept")
}

// TestRouter_Errors checks the messages a user gets for a Canary the
// router cannot serve.
func TestRouter_Errors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(g Gomega, c *sluicev1beta1.Canary)
		want   string
	}{
		{name: "no routeRef", mutate: func(_ Gomega, c *sluicev1beta1.Canary) { c.Spec.RouteRef = nil }, want: "needs spec.routeRef"},
		{name: "missing route", mutate: func(_ Gomega, c *sluicev1beta1.Canary) { c.Spec.RouteRef.Name = "nope" }, want: "/nope of spec.routeRef does not exist"},
		{name: "no apex backend", mutate: func(_ Gomega, c *sluicev1beta1.Canary) { c.Spec.Service.Name = "other-app" }, want: "has no http route with the backend other-app"},
		{name: "two backends", mutate: func(g Gomega, c *sluicev1beta1.Canary) {
			web := get(g, c.Namespace, "web")
			http, _, _ := unstructured.NestedSlice(web.Object, "spec", "http")
			m := http[1].(map[string]any)
			m["backends"] = append(m["backends"].([]any), map[string]any{"serviceName": "extra", "servicePort": int64(80)})
			g.Expect(unstructured.SetNestedSlice(web.Object, http, "spec", "http")).To(Succeed())
			g.Expect(env.Client.Update(ctx, web)).To(Succeed())
		}, want: "has 2 backends: the apisix provider needs exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c, rt := setup(t)
			tc.mutate(g, c)
			g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring(tc.want)))
		})
	}
	g := NewWithT(t)
	c, rt := setup(t)
	_, err := rt.GetRoutes(ctx, c)
	g.Expect(err).To(MatchError(ContainSubstring("ApisixRoute web-app-canary does not exist")))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100, Mirrored: true})).To(MatchError(ContainSubstring("the router of ApisixRoute cannot mirror traffic")))
}

// TestRender_AcceptedByTheCRD applies the rendered route with strict field
// validation, so a field the CRD does not know fails the test, and checks
// that the check is not vacuous.
func TestRender_AcceptedByTheCRD(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, _ := setup(t)
	spec, err := apisix.Render(c, get(g, c.Namespace, "web"), router.Routes{PrimaryWeight: 90, CanaryWeight: 10})
	g.Expect(err).NotTo(HaveOccurred())
	obj := apisixRoute("strict", nil)
	obj.SetNamespace(c.Namespace)
	obj.Object["spec"] = spec
	opts := []client.PatchOption{client.FieldOwner(router.FieldManager), client.ForceOwnership, client.FieldValidation("Strict")}
	g.Expect(env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, opts...)).To(Succeed()) //nolint:staticcheck // client.Apply on unstructured
	g.Expect(get(g, c.Namespace, "strict").Object["spec"]).To(Equal(spec))

	bad := obj.DeepCopy()
	bad.Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)["bogus"] = true
	g.Expect(env.Client.Patch(ctx, bad, client.Apply, append(opts, client.DryRunAll)...)).To(MatchError(ContainSubstring("bogus"))) //nolint:staticcheck // client.Apply on unstructured
}
