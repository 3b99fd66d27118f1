package knative_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/knative"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	// Knative Serving's CRDs from its Go module (hack/crds.sh); no Knative
	// controller runs, so the tests write the Service's status themselves.
	if env, err = testenv.Start(scheme, testenv.WithCRDPaths("bin/crds/knative")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    knative.Name,
		Register:    knative.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Match, conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "knative-conformance") },
		Canary:      newCanary,
		Prepare: func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
			return createService(ctx, c, canary.Namespace, "app-00001")
		},
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: knative.GVK, Name: c.Spec.TargetRef.Name}}
		},
		HandEdit:  handEdit,
		Backends:  func(*unstructured.Unstructured) ([]string, bool) { return nil, false },
		Finalized: servesLatest,
	})
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  knative.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 80},
	}}
}

// createService creates the user's Knative Service and writes the status
// Knative would: its latest created revision.
func createService(ctx context.Context, c client.Client, ns, revision string) error {
	svc := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"template": map[string]any{
		"spec": map[string]any{"containers": []any{map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"}}}}}}}
	svc.SetGroupVersionKind(knative.GVK)
	svc.SetName("app")
	svc.SetNamespace(ns)
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	return setLatest(ctx, c, ns, revision)
}

func setLatest(ctx context.Context, c client.Client, ns, revision string) error {
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knative.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, svc); err != nil {
		return err
	}
	if err := unstructured.SetNestedField(svc.Object, revision, "status", "latestCreatedRevisionName"); err != nil {
		return err
	}
	return c.Status().Update(ctx, svc)
}

// handEdit sets the percentages in spec.traffic with an update, as kubectl edit would.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knative.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, svc); err != nil {
		return err
	}
	traffic, _, _ := unstructured.NestedSlice(svc.Object, "spec", "traffic")
	for _, t := range traffic {
		m := t.(map[string]any)
		if latest, _ := m["latestRevision"].(bool); latest {
			m["percent"] = int64(r.CanaryWeight)
		} else {
			m["percent"] = int64(r.PrimaryWeight)
		}
	}
	if err := unstructured.SetNestedSlice(svc.Object, traffic, "spec", "traffic"); err != nil {
		return err
	}
	return c.Update(ctx, svc)
}

// servesLatest checks what Finalize leaves: all traffic to the latest
// revision, no primary annotation, the user's template untouched.
func servesLatest(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knative.GVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, svc); err != nil {
		return err
	}
	traffic, _, _ := unstructured.NestedSlice(svc.Object, "spec", "traffic")
	if len(traffic) != 1 || fmt.Sprint(traffic[0]) != fmt.Sprint(map[string]any{"latestRevision": true, "percent": int64(100)}) {
		return fmt.Errorf("spec.traffic is %v, not the latest revision at 100%%", traffic)
	}
	if _, ok := svc.GetAnnotations()[knative.PrimaryRevisionAnnotation]; ok {
		return fmt.Errorf("the %s annotation is still there", knative.PrimaryRevisionAnnotation)
	}
	if image, _, _ := unstructured.NestedSlice(svc.Object, "spec", "template", "spec", "containers"); len(image) != 1 {
		return fmt.Errorf("the template lost its container: %v", image)
	}
	return nil
}
