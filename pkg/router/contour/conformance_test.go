package contour_test

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
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/contour"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	// Contour's CRDs from its Go module (hack/crds.sh).
	if env, err = testenv.Start(scheme, testenv.WithCRDPaths("bin/crds/contour")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    contour.Name,
		Register:    contour.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "contour-conformance") },
		Canary:      newCanary,
		Prepare:     prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			apex, _, _ := c.ServiceNames()
			return []conformance.Object{{GVK: contour.GVK, Name: apex}}
		},
		HandEdit: handEdit,
		Backends: backends,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			apex, primary, _ := c.ServiceNames()
			return proxy(apex, []any{
				map[string]any{"conditions": []any{map[string]any{"prefix": "/"}},
					"services": []any{map[string]any{"name": primary, "port": int64(80)}}},
				map[string]any{"conditions": []any{map[string]any{"prefix": "/legacy"}},
					"services": []any{map[string]any{"name": "legacy", "port": int64(8080)}}},
			})
		},
	})
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  contour.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service: sluicev1beta1.CanaryService{Port: 80, Timeout: "30s",
			Retries: &sluicev1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "5xx,gateway-error"}},
	}}
}

// prepare creates the apex, primary and canary Services.
func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	apex, primary, canaryName := canary.ServiceNames()
	for name, value := range map[string]string{apex: primary, primary: primary, canaryName: apex} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return nil
}

// handEdit sets the weights of the primary and canary services of the
// first route with an update, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	apex, primary, canaryName := canary.ServiceNames()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(contour.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: apex}, u); err != nil {
		return err
	}
	routes, _, err := unstructured.NestedSlice(u.Object, "spec", "routes")
	if err != nil {
		return err
	}
	for _, s := range routes[0].(map[string]any)["services"].([]any) {
		m := s.(map[string]any)
		switch m["name"] {
		case primary:
			m["weight"] = int64(r.PrimaryWeight)
		case canaryName:
			m["weight"] = int64(r.CanaryWeight)
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, routes, "spec", "routes"); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

func proxy(name string, routes []any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"routes": routes}}}
	u.SetGroupVersionKind(contour.GVK)
	u.SetName(name)
	return u
}

// backends lists the services of every route of an HTTPProxy.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	for _, r := range routes {
		services, _, _ := unstructured.NestedSlice(r.(map[string]any), "services")
		for _, s := range services {
			name, _, _ := unstructured.NestedString(s.(map[string]any), "name")
			out = append(out, name)
		}
	}
	return out, true
}
