package smi_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/smi"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

// TestMain starts an API server with SMI's TrafficSplit CRD, from the SMI
// SDK's Go module, converted to apiextensions.k8s.io/v1 by hack/smicrd.
func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithCRDPaths("bin/crds/smi")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

var versions = map[string]string{smi.NameV1Alpha1: "v1alpha1", smi.NameV1Alpha2: "v1alpha2", smi.NameV1Alpha3: "v1alpha3"}

func TestConformance(t *testing.T) {
	for name, version := range versions {
		t.Run(name, func(t *testing.T) {
			gvk := smi.GVK(version)
			conformance.Run(t, conformance.Input{
				Provider:    name,
				Register:    smi.Register,
				Client:      env.Client,
				Unsupported: []conformance.Feature{conformance.Match, conformance.Mirror, conformance.SessionAffinity},
				Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "smi-conformance") },
				Canary:      func(ns string) *sluicev1beta1.Canary { return newCanary(ns, name) },
				Prepare:     prepare,
				Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
					return []conformance.Object{{GVK: gvk, Name: "app"}}
				},
				HandEdit: func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
					return handEdit(ctx, c, gvk, canary, r.PrimaryWeight, r.CanaryWeight)
				},
				Backends: backends,
				Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
					return trafficSplit(gvk, "app", map[string]any{"service": "app", "backends": []any{
						map[string]any{"service": "app", "weight": int64(1)},
						map[string]any{"service": "legacy", "weight": int64(0)},
					}})
				},
			})
		})
	}
}

func newCanary(ns, provider string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  provider,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 80},
	}}
}

func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	for name, value := range map[string]string{"app": "app", "app-primary": "app-primary", "app-canary": "app"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return nil
}

func trafficSplit(gvk schema.GroupVersionKind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(gvk)
	u.SetName(name)
	return u
}

// handEdit sets the weights of the primary and canary backends (integers,
// or quantity strings as v1alpha1 allows) with an update.
func handEdit(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, canary *sluicev1beta1.Canary, primary, canaryWeight any) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, u); err != nil {
		return err
	}
	backends, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
	for _, b := range backends {
		m := b.(map[string]any)
		switch m["service"] {
		case "app-primary":
			m["weight"] = toJSON(primary)
		case "app-canary":
			m["weight"] = toJSON(canaryWeight)
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, backends, "spec", "backends"); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

func toJSON(v any) any {
	if w, ok := v.(int32); ok {
		return int64(w)
	}
	return v
}

func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	bs, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
	for _, b := range bs {
		name, _, _ := unstructured.NestedString(b.(map[string]any), "service")
		out = append(out, name)
	}
	return out, true
}

func setup(t *testing.T, provider string) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "smi-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns, provider)
	c.UID = "00000000-0000-0000-0000-000000000002"
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	smi.Register(reg)
	rt, err := reg.New(provider, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

func get(g Gomega, gvk schema.GroupVersionKind, ns string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, u)).To(Succeed())
	return u
}

// TestRouter_TrafficSplit checks the TrafficSplit written at each version:
// the apex (or the first host) as the root service, the canary and primary
// backends, and an idle reconcile that writes nothing.
func TestRouter_TrafficSplit(t *testing.T) {
	ctx := context.Background()
	for name, version := range versions {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c, rt := setup(t, name)
			c.Spec.Service.Hosts = []string{"app.web.svc.cluster.local"}
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
			live := get(g, smi.GVK(version), c.Namespace)
			g.Expect(live.Object["spec"]).To(Equal(map[string]any{
				"service": "app.web.svc.cluster.local",
				"backends": []any{
					map[string]any{"service": "app-canary", "weight": int64(20)},
					map[string]any{"service": "app-primary", "weight": int64(80)},
				},
			}))
			rv := live.GetResourceVersion()
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(get(g, smi.GVK(version), c.Namespace).GetResourceVersion()).To(Equal(rv))
		})
	}
}

// TestRouter_RelativeWeights checks that weights a person sets by hand are
// read as their ratio.
func TestRouter_RelativeWeights(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, smi.NameV1Alpha1)
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(handEdit(ctx, env.Client, smi.GVK("v1alpha1"), c, int64(1), int64(3))).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}))
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}), "Reconcile keeps hand-set weights")
}
