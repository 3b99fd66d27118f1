package gloo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
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
	"github.com/sluice-cd/sluice/pkg/router/gloo"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

// TestMain starts an API server with schema-less RouteTable and Upstream
// CRDs: no Go module on the proxy holds Gloo's CRDs (github.com/solo-io/gloo
// and solo-apis list no version), so the test checks the groups, versions,
// kinds and resources on the API server, and the rendered specs against
// Gloo's documented shape.
func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithCRDs(
		testenv.SchemalessCRD(gloo.RouteTableGVK, "routetables"),
		testenv.SchemalessCRD(gloo.UpstreamGVK, "upstreams"))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  gloo.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 9898},
	}}
}

func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	for name, value := range map[string]string{"app": "app", "app-primary": "app-primary", "app-canary": "app"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 9898}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    gloo.Name,
		Register:    gloo.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "gloo-conformance") },
		Canary:      newCanary,
		Prepare:     prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{
				{GVK: gloo.UpstreamGVK, Name: gloo.UpstreamName(c, false)},
				{GVK: gloo.UpstreamGVK, Name: gloo.UpstreamName(c, true)},
				{GVK: gloo.RouteTableGVK, Name: "app"},
			}
		},
		HandEdit: handEdit,
		Backends: backends,
		Original: func(c *sluicev1beta1.Canary) *unstructured.Unstructured {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"routes": []any{map[string]any{
				"matchers":    []any{map[string]any{"prefix": "/"}},
				"routeAction": map[string]any{"single": map[string]any{"upstream": map[string]any{"name": "legacy", "namespace": "gloo-system"}}},
			}}}}}
			u.SetGroupVersionKind(gloo.RouteTableGVK)
			u.SetName("app")
			return u
		},
	})
}

// handEdit sets the weights of the Upstreams' destinations, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gloo.RouteTableGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, u); err != nil {
		return err
	}
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	for _, rt := range routes {
		dests, _, _ := unstructured.NestedSlice(rt.(map[string]any), "routeAction", "multi", "destinations")
		for _, d := range dests {
			m := d.(map[string]any)
			switch name, _, _ := unstructured.NestedString(m, "destination", "upstream", "name"); name {
			case gloo.UpstreamName(canary, false):
				m["weight"] = int64(r.PrimaryWeight)
			case gloo.UpstreamName(canary, true):
				m["weight"] = int64(r.CanaryWeight)
			}
		}
		_ = unstructured.SetNestedSlice(rt.(map[string]any), dests, "routeAction", "multi", "destinations")
	}
	if err := unstructured.SetNestedSlice(u.Object, routes, "spec", "routes"); err != nil {
		return err
	}
	return c.Update(ctx, u)
}

// backends lists the Services a RouteTable sends requests to: its kube
// destinations, and its Upstream destinations by the Service they name
// (<ns>-<service>upstream-<port>, as Sluice names them). Upstreams route
// nothing by themselves.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	if u.GetKind() != gloo.RouteTableGVK.Kind {
		return nil, false
	}
	var out []string
	add := func(d map[string]any) {
		if name, ok, _ := unstructured.NestedString(d, "kube", "ref", "name"); ok {
			out = append(out, name)
		}
		if name, ok, _ := unstructured.NestedString(d, "upstream", "name"); ok {
			name = strings.TrimPrefix(name, u.GetNamespace()+"-")
			if i := strings.LastIndex(name, "upstream-"); i > 0 {
				name = name[:i]
			}
			out = append(out, name)
		}
	}
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	for _, rt := range routes {
		if single, ok, _ := unstructured.NestedMap(rt.(map[string]any), "routeAction", "single"); ok {
			add(single)
		}
		dests, _, _ := unstructured.NestedSlice(rt.(map[string]any), "routeAction", "multi", "destinations")
		for _, d := range dests {
			if dest, ok, _ := unstructured.NestedMap(d.(map[string]any), "destination"); ok {
				add(dest)
			}
		}
	}
	return out, true
}
