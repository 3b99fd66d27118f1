package istio_test

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
	"github.com/sluice-cd/sluice/pkg/router/istio"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = istio.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithProviderCRDs()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	for name, value := range map[string]string{"app": "app-primary", "app-primary": "app-primary", "app-canary": "app"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return nil
}

func testCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  istio.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 80, Hosts: []string{"app.example.com"}},
	}}
}

// handEdit sets the weights of every rule routing to both sides, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(istio.VirtualServiceGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, vs); err != nil {
		return err
	}
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, h := range http {
		for _, d := range h.(map[string]any)["route"].([]any) {
			dm := d.(map[string]any)
			switch host, _, _ := unstructured.NestedString(dm, "destination", "host"); host {
			case "app-primary":
				dm["weight"] = int64(r.PrimaryWeight)
			case "app-canary":
				dm["weight"] = int64(r.CanaryWeight)
			}
		}
	}
	if err := unstructured.SetNestedSlice(vs.Object, http, "spec", "http"); err != nil {
		return err
	}
	return c.Update(ctx, vs)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:  istio.Name,
		Register:  istio.Register,
		Client:    env.Client,
		Namespace: func(ctx context.Context) (string, error) { return env.Namespace(ctx, "istio-conformance") },
		Canary:    testCanary,
		Prepare:   prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{
				{GVK: istio.VirtualServiceGVK, Name: "app"},
				{GVK: istio.DestinationRuleGVK, Name: "app-primary"},
				{GVK: istio.DestinationRuleGVK, Name: "app-canary"},
			}
		},
		HandEdit: handEdit,
		Backends: backends,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			u := &unstructured.Unstructured{Object: map[string]any{
				"spec": map[string]any{
					"hosts": []any{"app"},
					"http": []any{map[string]any{
						"name":  "users",
						"route": []any{map[string]any{"destination": map[string]any{"host": "app"}}},
					}},
				},
			}}
			u.SetGroupVersionKind(istio.VirtualServiceGVK)
			u.SetName("app")
			return u
		},
	})
}

// backends lists the hosts a VirtualService sends requests to (HTTP and TCP
// destinations, mirrors); a DestinationRule routes nothing.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	if u.GetKind() != istio.VirtualServiceGVK.Kind {
		return nil, false
	}
	var out []string
	for _, kind := range []string{"http", "tcp", "tls"} {
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", kind)
		for _, r := range rules {
			rm := r.(map[string]any)
			routes, _, _ := unstructured.NestedSlice(rm, "route")
			for _, d := range routes {
				host, _, _ := unstructured.NestedString(d.(map[string]any), "destination", "host")
				out = append(out, host)
			}
			if host, ok, _ := unstructured.NestedString(rm, "mirror", "host"); ok {
				out = append(out, host)
			}
			mirrors, _, _ := unstructured.NestedSlice(rm, "mirrors")
			for _, m := range mirrors {
				host, _, _ := unstructured.NestedString(m.(map[string]any), "destination", "host")
				out = append(out, host)
			}
		}
	}
	return out, true
}
