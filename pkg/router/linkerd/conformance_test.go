package linkerd_test

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
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/linkerd"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

// TestMain starts an API server with the Gateway API CRDs (from the
// gateway-api Go module, hack/crds.sh): Linkerd's mesh routes are
// gateway.networking.k8s.io HTTPRoutes.
func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gatewayv1.Install(scheme)
	var err error
	if env, err = testenv.Start(scheme, testenv.WithCRDPaths("bin/crds/gatewayapi")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func newCanary(ns string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
		Provider:  linkerd.Name,
		TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
		Service:   sluicev1beta1.CanaryService{Port: 80, Timeout: "30s"},
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

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    linkerd.Name,
		Register:    linkerd.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "linkerd-conformance") },
		Canary:      newCanary,
		Objects: func(c *sluicev1beta1.Canary) []conformance.Object {
			return []conformance.Object{{GVK: linkerd.GVK, Name: "app"}}
		},
		Prepare:  prepare,
		HandEdit: handEdit,
		Backends: backends,
		Original: func(canary *sluicev1beta1.Canary) *unstructured.Unstructured {
			return &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
				"metadata": map[string]any{"name": "app"},
				"spec": map[string]any{
					"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "app", "port": int64(80)}},
					"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "app", "port": int64(80)}}}},
				},
			}}
		},
	})
}

// TestRouter_MeshParent checks on the API server that the HTTPRoute
// attaches to the apex Service (GAMMA) when the Canary names no parent, to
// the parents it names otherwise, and routes A/B header matches.
func TestRouter_MeshParent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	reg := router.NewRegistry()
	linkerd.Register(reg)
	rt, err := reg.New(linkerd.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	ns, err := env.Namespace(ctx, "linkerd-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Service.Hosts = []string{"app.web.svc.cluster.local"}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}}
	g.Expect(prepare(ctx, env.Client, c)).To(Succeed())
	g.Expect(router.Unsupported(rt, c, linkerd.Name)).To(BeEmpty())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())

	route := &gatewayv1.HTTPRoute{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, route)).To(Succeed())
	g.Expect(route.Spec.ParentRefs).To(HaveLen(1))
	p := route.Spec.ParentRefs[0]
	g.Expect(*p.Group).To(Equal(gatewayv1.Group("")))
	g.Expect(*p.Kind).To(Equal(gatewayv1.Kind("Service")))
	g.Expect(p.Name).To(Equal(gatewayv1.ObjectName("app")))
	g.Expect(*p.Port).To(Equal(gatewayv1.PortNumber(80)))
	g.Expect(route.Spec.Hostnames).To(BeEmpty(), "a mesh route carries no hostnames")
	g.Expect(route.Spec.Rules).NotTo(BeEmpty())
	ab := route.Spec.Rules[0]
	g.Expect(ab.Matches).NotTo(BeEmpty())
	g.Expect(ab.Matches[0].Headers).To(ContainElement(HaveField("Name", gatewayv1.HTTPHeaderName("x-canary"))))

	// A Canary that names its parents keeps them (a route shared with an ingress Gateway).
	named := c.DeepCopy()
	named.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
	g.Expect(linkerd.Mesh(named).Spec.Service.GatewayRefs).To(Equal(named.Spec.Service.GatewayRefs))
	g.Expect(linkerd.Mesh(named).Spec.Service.Hosts).To(Equal(named.Spec.Service.Hosts))
	g.Expect(linkerd.Mesh(c)).NotTo(BeIdenticalTo(c), "Mesh must not change the Canary it is given")
	g.Expect(c.Spec.Service.GatewayRefs).To(BeEmpty())
	g.Expect(c.Spec.Service.Hosts).To(HaveLen(1))

	// Mirroring and sticky sessions are refused before a release starts.
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Mirror: true}
	g.Expect(router.Unsupported(rt, c, linkerd.Name)).To(ConsistOf(ContainSubstring("cannot mirror traffic")))
}

// handEdit sets the weights of the rule holding the primary and the canary.
func handEdit(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error {
	route := &gatewayv1.HTTPRoute{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: canary.Namespace, Name: "app"}, route); err != nil {
		return err
	}
	for i, rule := range route.Spec.Rules {
		for j, b := range rule.BackendRefs {
			switch b.Name {
			case "app-primary":
				route.Spec.Rules[i].BackendRefs[j].Weight = &r.PrimaryWeight
			case "app-canary":
				route.Spec.Rules[i].BackendRefs[j].Weight = &r.CanaryWeight
			}
		}
	}
	return c.Update(ctx, route)
}

// backends lists the Services of the backendRefs of every rule.
func backends(u *unstructured.Unstructured) ([]string, bool) {
	var out []string
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
		for _, ref := range refs {
			name, _, _ := unstructured.NestedString(ref.(map[string]any), "name")
			out = append(out, name)
		}
	}
	return out, true
}
