package kuma_test

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
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/kuma"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

// TestMain starts an API server with a schema-less MeshHTTPRoute CRD: no
// Go module on the proxy holds Kuma's CRDs (github.com/kumahq/kuma lists
// no version), so the test checks the group, version, kind and resource on
// the API server and the rendered spec against Kuma's documented examples.
func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithCRDs(testenv.SchemalessCRD(kuma.GVK, "meshhttproutes"))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  kuma.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 8080},
	}}
}

func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	for name, value := range map[string]string{"app": "app", "app-primary": "app-primary", "app-canary": "app"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    kuma.Name,
		Register:    kuma.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "kuma-conformance") },
		Canary:      newCanary,
		Prepare:     prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: kuma.GVK, Name: "app"}}
		},
		HandEdit: handEdit,
		Backends: backends,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
				"targetRef": map[string]any{"kind": "Mesh"},
				"to": []any{map[string]any{
					"targetRef": map[string]any{"kind": "MeshService", "labels": map[string]any{kuma.DisplayNameLabel: "app"}},
					"rules": []any{map[string]any{
						"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/v1"}}},
						"default": map[string]any{"backendRefs": []any{map[string]any{"kind": "MeshService", "labels": map[string]any{kuma.DisplayNameLabel: "app"}, "port": int64(8080)}}},
					}},
				}},
			}}}
			u.SetGroupVersionKind(kuma.GVK)
			u.SetName("app")
			return u
		},
	})
}

// handEdit sets the weights of every backendRef of the primary and the
// canary, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kuma.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, u); err != nil {
		return err
	}
	to, _, _ := unstructured.NestedSlice(u.Object, "spec", "to")
	for _, t := range to {
		rules, _, _ := unstructured.NestedSlice(t.(map[string]any), "rules")
		for _, rule := range rules {
			refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "default", "backendRefs")
			for _, ref := range refs {
				m := ref.(map[string]any)
				name, _, _ := unstructured.NestedString(m, "labels", kuma.DisplayNameLabel)
				switch name {
				case "app-primary":
					m["weight"] = int64(r.PrimaryWeight)
				case "app-canary":
					m["weight"] = int64(r.CanaryWeight)
				}
			}
			_ = unstructured.SetNestedSlice(rule.(map[string]any), refs, "default", "backendRefs")
		}
		_ = unstructured.SetNestedSlice(t.(map[string]any), rules, "rules")
	}
	if err := unstructured.SetNestedSlice(u.Object, to, "spec", "to"); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

// backends lists the MeshServices (by display name) of every rule.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	to, _, _ := unstructured.NestedSlice(u.Object, "spec", "to")
	for _, t := range to {
		rules, _, _ := unstructured.NestedSlice(t.(map[string]any), "rules")
		for _, rule := range rules {
			refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "default", "backendRefs")
			for _, ref := range refs {
				name, _, _ := unstructured.NestedString(ref.(map[string]any), "labels", kuma.DisplayNameLabel)
				out = append(out, name)
			}
		}
	}
	return out, true
}

func get(g Gomega, ns string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kuma.GVK)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, u)).To(Succeed())
	return u
}
