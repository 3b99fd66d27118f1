package apisix_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/apisix"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

// TestMain starts an API server with APISIX's ApisixRoute CRD, copied from
// the apisix-ingress-controller Go module by hack/crds.sh.
func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithCRDPaths("bin/crds/apisix")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    apisix.Name,
		Register:    apisix.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Match, conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "apisix-conformance") },
		Canary:      newCanary,
		Prepare:     prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: apisix.GVK, Name: apisix.RouteName(c)}}
		},
		HandEdit: handEdit,
		Backends: backends,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			_, primary, _ := c.ServiceNames()
			return apisixRoute(apisix.RouteName(c), []any{httpRoute("legacy", "/legacy", map[string]any{"serviceName": primary, "servicePort": int64(80)})})
		},
	})
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  apisix.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		RouteRef:  &sluicev1beta1.ObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"},
		Service:   sluicev1beta1.CanaryService{Port: 80},
	}}
}

// prepare creates the apex, primary and canary Services and the user's
// ApisixRoute "web": a route to another Service, then the one to the apex.
func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	apex, primary, canaryName := canary.ServiceNames()
	for name, value := range map[string]string{apex: primary, primary: primary, canaryName: apex} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	web := apisixRoute("web", []any{
		httpRoute("other", "/other/*", map[string]any{"serviceName": "other", "servicePort": int64(8080)}),
		httpRoute("main", "/*", map[string]any{"serviceName": apex, "servicePort": int64(80), "resolveGranularity": "service"}),
	})
	web.SetNamespace(canary.Namespace)
	if err := unstructured.SetNestedField(web.Object, "apisix", "spec", "ingressClassName"); err != nil {
		return err
	}
	return c.Create(ctx, web)
}

func apisixRoute(name string, http []any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"http": http}}}
	u.SetGroupVersionKind(apisix.GVK)
	u.SetName(name)
	return u
}

func httpRoute(name, path string, backends ...any) map[string]any {
	return map[string]any{
		"name":     name,
		"match":    map[string]any{"hosts": []any{"app.example.com"}, "paths": []any{path}},
		"backends": backends,
	}
}

// handEdit sets the weights of the primary and canary backends with an
// update, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	_, primary, canaryName := canary.ServiceNames()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(apisix.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: apisix.RouteName(canary)}, u); err != nil {
		return err
	}
	http, _, err := unstructured.NestedSlice(u.Object, "spec", "http")
	if err != nil {
		return err
	}
	for _, h := range http {
		backends := h.(map[string]any)["backends"].([]any)
		for _, b := range backends {
			m := b.(map[string]any)
			switch m["serviceName"] {
			case primary:
				m["weight"] = int64(r.PrimaryWeight)
			case canaryName:
				m["weight"] = int64(r.CanaryWeight)
			}
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, http, "spec", "http"); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

// backends lists the Services of every http route of an ApisixRoute.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	for _, h := range http {
		bs, _, _ := unstructured.NestedSlice(h.(map[string]any), "backends")
		for _, b := range bs {
			name, _, _ := unstructured.NestedString(b.(map[string]any), "serviceName")
			out = append(out, name)
		}
	}
	return out, true
}
