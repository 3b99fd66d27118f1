package gatewayapi_test

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
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gatewayv1.Install(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithProviderCRDs()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func testCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  gatewayapi.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service: sluicev1beta1.CanaryService{
			Port:        80,
			Hosts:       []string{"app.example.com"},
			GatewayRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr(gatewayv1.Namespace("gateway"))}},
			Timeout:     "30s",
			Headers: &sluicev1beta1.HeadersOperations{
				Request:  &sluicev1beta1.HeaderOperations{Add: map[string]string{"x-sluice": "canary"}},
				Response: &sluicev1beta1.HeaderOperations{Remove: []string{"server"}},
			},
		},
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

// handEdit sets the weights of Sluice's weighted rule as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	route := &gatewayv1.HTTPRoute{}
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

// original is an HTTPRoute a user had before Sluice: everything to the apex.
func original(canary *sluicev1beta1.Canary) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "app", "namespace": canary.Namespace},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public", "namespace": "gateway"}},
			"hostnames":  []any{"app.example.com"},
			"rules": []any{map[string]any{
				"backendRefs": []any{map[string]any{"name": "app", "port": int64(80)}},
			}},
		},
	}}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:  gatewayapi.Name,
		Register:  func(r *router.Registry) { gatewayapi.Register(r) },
		Client:    env.Client,
		Namespace: func(ctx context.Context) (string, error) { return env.Namespace(ctx, "gwapi-conformance") },
		Canary:    testCanary,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: gatewayapi.GVK, Name: "app"}}
		},
		Prepare:  prepare,
		HandEdit: handEdit,
		Original: original,
		Backends: backends,
	})
}

// backends lists the Services an HTTPRoute sends requests to: the backends
// of every rule and the targets of its mirror filters.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	mirrors := func(filters []any) {
		for _, f := range filters {
			if name, ok, _ := unstructured.NestedString(f.(map[string]any), "requestMirror", "backendRef", "name"); ok {
				out = append(out, name)
			}
		}
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, r := range rules {
		rm := r.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rm, "backendRefs")
		for _, ref := range refs {
			name, _, _ := unstructured.NestedString(ref.(map[string]any), "name")
			out = append(out, name)
			filters, _, _ := unstructured.NestedSlice(ref.(map[string]any), "filters")
			mirrors(filters)
		}
		filters, _, _ := unstructured.NestedSlice(rm, "filters")
		mirrors(filters)
	}
	return out, true
}

func ptr[T any](v T) *T { return &v }
