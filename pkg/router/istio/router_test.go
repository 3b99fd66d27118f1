package istio_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/istio"
)

func newRouter(t *testing.T, prefix string) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), prefix)
	g.Expect(err).NotTo(HaveOccurred())
	c := testCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	istio.Register(reg)
	rt, err := reg.New(istio.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

func live(g Gomega, ns, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if kind == "VirtualService" {
		u.SetGroupVersionKind(istio.VirtualServiceGVK)
	} else {
		u.SetGroupVersionKind(istio.DestinationRuleGVK)
	}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

// TestRouter_IdleReconcileWritesNothing checks that reconciling objects that
// already match costs no API write.
func TestRouter_IdleReconcileWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, _ := newRouter(t, "istio-idle")
	writes := 0
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	cl := interceptor.NewClient(direct, interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			writes++
			return cl.Patch(ctx, obj, patch, opts...)
		},
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes++
			return cl.Update(ctx, obj, opts...)
		},
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes++
			return cl.Create(ctx, obj, opts...)
		},
	})
	reg := router.NewRegistry()
	istio.Register(reg)
	rt, err := reg.New(istio.Name, cl)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
	g.Expect(writes).To(Equal(4), "three objects created, then one weight change")
	writes = 0
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(writes).To(BeZero(), "an idle canary wrote to the API")
}

// TestRouter_KeepsUserRules checks that rules added by users stay after
// Sluice's, and that a pre-existing VirtualService records its original.
func TestRouter_KeepsUserRules(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := newRouter(t, "istio-user-rules")
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	vs := live(g, c.Namespace, "VirtualService", "app")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	user := map[string]any{
		"name":  "legacy",
		"match": []any{map[string]any{"uri": map[string]any{"prefix": "/legacy"}}},
		"route": []any{map[string]any{"destination": map[string]any{"host": "legacy"}}},
	}
	http = append([]any{user}, http...)
	g.Expect(unstructured.SetNestedSlice(vs.Object, http, "spec", "http")).To(Succeed())
	g.Expect(env.Client.Update(ctx, vs)).To(Succeed())

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	vs = live(g, c.Namespace, "VirtualService", "app")
	http, _, _ = unstructured.NestedSlice(vs.Object, "spec", "http")
	g.Expect(http).To(HaveLen(2))
	g.Expect(http[0].(map[string]any)["name"]).To(Equal("sluice-canary"))
	g.Expect(http[1].(map[string]any)["name"]).To(Equal("legacy"))
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 60, CanaryWeight: 40}))
	g.Expect(vs.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation), "a VirtualService Sluice created records no original")
}

// TestRouter_MultiPort checks that every port of the apex Service is routed.
func TestRouter_MultiPort(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := newRouter(t, "istio-multiport")
	svc := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "app"}, svc)).To(Succeed())
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9090})
	g.Expect(env.Client.Update(ctx, svc)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	vs := live(g, c.Namespace, "VirtualService", "app")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	g.Expect(http).To(HaveLen(2))
	for i, name := range []string{"sluice-canary-http", "sluice-canary-grpc"} {
		rule := http[i].(map[string]any)
		g.Expect(rule["name"]).To(Equal(name))
		w, _, _ := unstructured.NestedInt64(rule["route"].([]any)[1].(map[string]any), "weight")
		g.Expect(w).To(Equal(int64(30)))
	}
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 70, CanaryWeight: 30}))
}

// TestRouter_RestoresDestinationRule checks that a DestinationRule that
// existed before Sluice gets its spec back on Finalize.
func TestRouter_RestoresDestinationRule(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := newRouter(t, "istio-restore-dr")
	c.Spec.Service.TrafficPolicy = &sluicev1beta1.TrafficPolicy{TLS: &sluicev1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL"}}
	dr := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"host": "app-primary", "trafficPolicy": map[string]any{"tls": map[string]any{"mode": "DISABLE"}}}}}
	dr.SetGroupVersionKind(istio.DestinationRuleGVK)
	dr.SetName("app-primary")
	dr.SetNamespace(c.Namespace)
	g.Expect(env.Client.Create(ctx, dr)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	got := live(g, c.Namespace, "DestinationRule", "app-primary")
	mode, _, _ := unstructured.NestedString(got.Object, "spec", "trafficPolicy", "tls", "mode")
	g.Expect(mode).To(Equal("ISTIO_MUTUAL"))
	g.Expect(got.GetAnnotations()).To(HaveKey(router.OriginalAnnotation))
	g.Expect(got.GetOwnerReferences()).To(BeEmpty())
	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	got = live(g, c.Namespace, "DestinationRule", "app-primary")
	mode, _, _ = unstructured.NestedString(got.Object, "spec", "trafficPolicy", "tls", "mode")
	g.Expect(mode).To(Equal("DISABLE"))
	g.Expect(got.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
	// The DestinationRule Sluice created carries the owner reference.
	g.Expect(live(g, c.Namespace, "DestinationRule", "app-canary").GetOwnerReferences()).To(HaveLen(1))
}

// TestRouter_BaselineDestinationRule checks that a Canary with a baseline
// gets a third DestinationRule with the same traffic policy as the primary's
// and the canary's, so the baseline is reached as they are, and that a
// Canary without one gets none.
func TestRouter_BaselineDestinationRule(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := newRouter(t, "istio-baseline-dr")
	c.Spec.Service.TrafficPolicy = &sluicev1beta1.TrafficPolicy{TLS: &sluicev1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL"}}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	absent := &unstructured.Unstructured{}
	absent.SetGroupVersionKind(istio.DestinationRuleGVK)
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "app-baseline"}, absent)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a Canary without a baseline got a baseline DestinationRule: %v", err)

	c.Spec.Analysis.Baseline = true
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	got := live(g, c.Namespace, "DestinationRule", "app-baseline")
	host, _, _ := unstructured.NestedString(got.Object, "spec", "host")
	g.Expect(host).To(Equal("app-baseline"))
	mode, _, _ := unstructured.NestedString(got.Object, "spec", "trafficPolicy", "tls", "mode")
	g.Expect(mode).To(Equal("ISTIO_MUTUAL"), "the baseline is reached with another traffic policy than the primary")
	g.Expect(got.GetOwnerReferences()).To(HaveLen(1), "the baseline DestinationRule is garbage-collected with the Canary")
	primary := live(g, c.Namespace, "DestinationRule", "app-primary")
	g.Expect(got.Object["spec"].(map[string]any)["trafficPolicy"]).To(Equal(primary.Object["spec"].(map[string]any)["trafficPolicy"]))
	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
}
