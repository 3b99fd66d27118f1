package canary_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// userShopRoute is an HTTPRoute a user keeps: a rule to the apex Service
// with a header filter and a timeout, and a rule to another Service.
func userShopRoute(ns, apex string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "shop", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public"}},
			"rules": []any{
				map[string]any{
					"filters": []any{map[string]any{"type": "RequestHeaderModifier",
						"requestHeaderModifier": map[string]any{"set": []any{map[string]any{"name": "x-tier", "value": "gold"}}}}},
					"timeouts":    map[string]any{"request": "30s"},
					"backendRefs": []any{map[string]any{"name": apex, "port": int64(80)}},
				},
				map[string]any{
					"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/legacy"}}},
					"backendRefs": []any{map[string]any{"name": "legacy", "port": int64(8080)}},
				},
			},
		},
	}}
}

func routeRefCanary(c *sluicev1beta1.Canary) {
	c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
	c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteRef: &sluicev1beta1.GatewayRouteReference{Name: "shop"}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 100}
}

// Given a Canary whose routeRef names a user-owned HTTPRoute that does not
// exist yet, the Canary is Ready=False with a message naming the route;
// once the user creates it, a whole release runs through its backendRefs
// only: the user's filter, timeout and other rule are there at every step,
// and after the promotion the route is exactly the user's again.
func TestCanary_GatewayAPIRouteRef(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("rr", "1.0", 1)
	f.canary("rr", "rr", routeRefCanary)
	f.g.Eventually(func() string {
		c := f.condition("rr", sluicev1beta1.ReadyCondition)
		if c == nil || c.Status != metav1.ConditionFalse {
			return ""
		}
		return c.Reason + ": " + c.Message
	}).Should(And(HavePrefix("ActionFailed: "), ContainSubstring("spec.service.gatewayAPI.routeRef: HTTPRoute shop not found in namespace "+f.ns)))

	f.g.Expect(env.Client.Create(f.ctx, userShopRoute(f.ns, "rr"))).To(Succeed())
	f.waitPhase("rr", sluicev1beta1.CanaryPhaseInitialized)
	route := func() (*gatewayv1.HTTPRoute, error) {
		r := &gatewayv1.HTTPRoute{}
		return r, f.get(r, "shop")
	}
	original, err := route()
	f.g.Expect(err).NotTo(HaveOccurred())
	weights := func() (string, error) {
		r, err := route()
		if err != nil {
			return "", err
		}
		if len(r.Spec.Rules) != 2 || len(r.Spec.Rules[0].Filters) != 1 || r.Spec.Rules[0].Timeouts == nil ||
			string(r.Spec.Rules[1].BackendRefs[0].Name) != "legacy" {
			return "the user's fields were lost", nil
		}
		var out []string
		for _, b := range r.Spec.Rules[0].BackendRefs {
			w := int32(1)
			if b.Weight != nil {
				w = *b.Weight
			}
			out = append(out, string(b.Name)+"="+strconv.Itoa(int(w)))
		}
		return strings.Join(out, ","), nil
	}
	f.g.Expect(weights()).To(Equal("rr=1"), "at rest the rule sends to the apex Service")
	f.setImage("rr", "2.0")
	f.g.Eventually(weights).Should(Equal("rr-primary=50,rr-canary=50"))
	f.g.Eventually(weights).Should(Equal("rr-primary=0,rr-canary=100"))
	f.waitPhase("rr", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Eventually(weights).Should(Equal("rr=1"))
	after, err := route()
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(after.Spec).To(Equal(original.Spec), "the user's route is back as it was")
	f.g.Expect(f.image("rr-primary")()).To(Equal("example.com/app:2.0"))
}

// Given a Canary whose routeRef cannot do what its analysis asks (A/B
// matches), the Canary is Stalled with the reason UnsupportedFeature and a
// message saying what to change.
func TestCanary_GatewayAPIRouteRefUnsupported(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("rrab", "1.0", 1)
	f.g.Expect(env.Client.Create(f.ctx, userShopRoute(f.ns, "rrab"))).To(Succeed())
	f.canary("rrab", "rrab", routeRefCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 2, Threshold: 1,
			Match: []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}}
	})
	f.g.Eventually(func() *metav1.Condition { return f.condition("rrab", sluicev1beta1.StalledCondition) }).Should(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", "UnsupportedFeature"),
		HaveField("Message", ContainSubstring("spec.service.gatewayAPI.routeRef cannot route by request match"))))
}
