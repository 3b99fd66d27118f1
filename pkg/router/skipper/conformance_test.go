package skipper_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/skipper"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	// Ingresses are core types: no CRD.
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    skipper.Name,
		Register:    func(r *router.Registry) { skipper.Register(r) },
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Match, conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "skipper-conformance") },
		Canary:      newCanary,
		Prepare:     prepare,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: router.IngressGVK, Name: router.CanaryIngressName(c)}}
		},
		HandEdit:  handEdit,
		Backends:  backends,
		Finalized: deleted,
	})
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:   skipper.Name,
		TargetRef:  sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		IngressRef: &sluicev1beta1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "app"},
		Service:    sluicev1beta1.CanaryService{Port: 80},
	}}
}

// prepare creates the apex, primary and canary Services and the user's
// Ingress: one path to the apex Service, one to another Service.
func prepare(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	apex, primary, canaryName := canary.ServiceNames()
	for name, value := range map[string]string{apex: primary, primary: primary, canaryName: apex} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
	}
	return c.Create(ctx, userIngress(canary.Namespace, apex))
}

func userIngress(ns, apex string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: map[string]string{"team": "web"},
			Annotations: map[string]string{"zalando.org/ratelimit": "ratelimit(20, \"1m\")", skipper.PredicateAnnotation: "Method(\"GET\")",
				"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("skipper"),
			Rules: []networkingv1.IngressRule{{Host: "app.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: backend(apex)},
					{Path: "/other", PathType: &prefix, Backend: backend("other")},
				}}}}},
		},
	}
}

// handEdit sets the backend weights annotation with an update, as kubectl
// edit would (relative weights, as Skipper reads them).
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	_, primary, canaryName := canary.ServiceNames()
	ing := &networkingv1.Ingress{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: router.CanaryIngressName(canary)}, ing); err != nil {
		return err
	}
	ing.Annotations[skipper.BackendWeightsAnnotation] = fmt.Sprintf(`{%q: %d, %q: %d}`, primary, 2*r.PrimaryWeight, canaryName, 2*r.CanaryWeight)
	return c.Update(ctx, ing)
}

// backends lists the Services of the paths of an Ingress.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, rule := range rules {
		paths, _, _ := unstructured.NestedSlice(rule.(map[string]any), "http", "paths")
		for _, p := range paths {
			name, _, _ := unstructured.NestedString(p.(map[string]any), "backend", "service", "name")
			out = append(out, name)
		}
	}
	return out, len(out) > 0
}

// deleted checks that Finalize removed the canary Ingress and left the
// user's Ingress as it was.
func deleted(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
	err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: router.CanaryIngressName(canary)}, &networkingv1.Ingress{})
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("the canary Ingress is still there after Finalize (%w)", err)
	}
	user := &networkingv1.Ingress{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, user); err != nil {
		return err
	}
	apex, _, _ := canary.ServiceNames()
	if got := user.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != apex {
		return fmt.Errorf("the user's Ingress sends to %s, not %s", got, apex)
	}
	if user.Annotations[skipper.PredicateAnnotation] != `Method("GET")` || len(user.ManagedFields) != 1 {
		return fmt.Errorf("the user's Ingress was written: %v", user.ManagedFields)
	}
	return nil
}
