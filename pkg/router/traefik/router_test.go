package traefik_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

// TestRender_AcceptedByTheCRD applies every golden TraefikService to the API
// server with strict field validation, and checks that nothing was pruned.
func TestRender_AcceptedByTheCRD(t *testing.T) {
	ctx := context.Background()
	for name, obj := range rendered(t) {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ns, err := env.Namespace(ctx, "traefik-crd")
			g.Expect(err).NotTo(HaveOccurred())
			obj.SetNamespace(ns)
			want := obj.DeepCopy()
			opts := []client.PatchOption{client.FieldOwner(router.FieldManager), client.ForceOwnership, client.FieldValidation("Strict")}
			g.Expect(env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, append(opts, client.DryRunAll)...)).To(Succeed()) //nolint:staticcheck // client.Apply on unstructured
			g.Expect(env.Client.Patch(ctx, obj.DeepCopy(), client.Apply, opts...)).To(Succeed())                           //nolint:staticcheck // client.Apply on unstructured
			live := get(g, ns, obj.GetName())
			g.Expect(live.Object["spec"]).To(Equal(want.Object["spec"]))
			g.Expect(live.GetAnnotations()).To(Equal(want.GetAnnotations()))

			// The check is not vacuous: an unknown field is rejected.
			bad := want.DeepCopy()
			s := services(bad)
			s[0].(map[string]any)["bogus"] = true
			g.Expect(unstructured.SetNestedSlice(bad.Object, s, "spec", "weighted", "services")).To(Succeed())
			g.Expect(env.Client.Patch(ctx, bad, client.Apply, append(opts, client.DryRunAll)...)).To(MatchError(ContainSubstring("bogus"))) //nolint:staticcheck // client.Apply on unstructured
		})
	}
}

func get(g Gomega, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(traefik.GVK)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

func setup(t *testing.T, opts ...traefik.Option) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "traefik-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	traefik.Register(reg, opts...)
	rt, err := reg.New(traefik.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

// TestRouter_IdleCostsNoWrite checks that reconciling an up-to-date
// TraefikService, or setting the weights it holds, writes nothing.
func TestRouter_IdleCostsNoWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, traefik.WithNativeLB())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	rv := get(g, c.Namespace, "app").GetResourceVersion()
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get(g, c.Namespace, "app").GetResourceVersion()).To(Equal(rv))
	for _, s := range services(get(g, c.Namespace, "app")) {
		g.Expect(s).To(HaveKeyWithValue("nativeLB", true))
	}
}

// TestRouter_ApexMetadata checks that the labels of spec.service.apex are
// written, and removed when dropped from it, while users' labels and the
// Canary label (what the manager caches and watches) stay.
func TestRouter_ApexMetadata(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	c.Spec.Service.Apex = &sluicev1beta1.CustomMetadata{Labels: map[string]string{"a": "1", "b": "2"}}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	u := get(g, c.Namespace, "app")
	g.Expect(u.GetLabels()).To(Equal(map[string]string{"a": "1", "b": "2", sluicev1beta1.CanaryLabel: "app"}))
	labels := u.GetLabels()
	labels["user"] = "x"
	u.SetLabels(labels)
	g.Expect(env.Client.Update(ctx, u)).To(Succeed())

	c.Spec.Service.Apex.Labels = map[string]string{"a": "1"}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get(g, c.Namespace, "app").GetLabels()).To(Equal(map[string]string{"a": "1", "user": "x", sluicev1beta1.CanaryLabel: "app"}))
}

// TestRouter_KeepsUserEntries checks on the API server that an entry a user
// added to the weighted services survives SetRoutes and Reconcile, and that
// relative weights are read back as percentages.
func TestRouter_KeepsUserEntries(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	u := get(g, c.Namespace, "app")
	s := services(u)
	s = append([]any{map[string]any{"name": "shadow", "port": int64(80), "weight": int64(0)}}, s...)
	g.Expect(unstructured.SetNestedSlice(u.Object, s, "spec", "weighted", "services")).To(Succeed())
	g.Expect(env.Client.Update(ctx, u)).To(Succeed())

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(services(get(g, c.Namespace, "app"))).To(Equal([]any{
		map[string]any{"name": "shadow", "port": int64(80), "weight": int64(0)},
		map[string]any{"name": "app-primary", "port": int64(80), "weight": int64(80)},
		map[string]any{"name": "app-canary", "port": int64(80), "weight": int64(20)},
	}))

	g.Expect(handEdit(ctx, env.Client, c, router.Routes{PrimaryWeight: 1, CanaryWeight: 3})).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}))
	// Reconcile keeps the hand-edited weights as they are.
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}))

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100, Mirrored: true})).To(MatchError(ContainSubstring("cannot mirror")))
}

// TestRouter_Errors checks the messages of a missing object and entry.
func TestRouter_Errors(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	_, err := rt.GetRoutes(ctx, c)
	g.Expect(err).To(MatchError(ContainSubstring("TraefikService app does not exist")))
	orig := traefikService("app", []any{map[string]any{"name": "app-primary", "port": int64(80)}})
	orig.SetNamespace(c.Namespace)
	g.Expect(env.Client.Create(ctx, orig)).To(Succeed())
	_, err = rt.GetRoutes(ctx, c)
	g.Expect(err).To(MatchError(ContainSubstring("does not route to both app-primary and app-canary")))
	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
}
