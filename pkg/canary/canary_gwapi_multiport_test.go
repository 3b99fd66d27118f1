package canary_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Given a gatewayapi Canary with a generated HTTPRoute whose target exposes
// two container ports and asks for portDiscovery, the Canary is Stalled
// with the reason UnsupportedFeature and a message saying why one generated
// route cannot route each port and what to use instead (routeRef); no
// HTTPRoute is written.
func TestCanary_GatewayAPIMultiPortUnsupported(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("mp", "1.0", 1, func(d *appsv1.Deployment) {
		ctr := &d.Spec.Template.Spec.Containers[0]
		ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9090})
	})
	f.canary("mp", "mp", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.PortDiscovery = true
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 100}
	})
	f.g.Eventually(func() *metav1.Condition { return f.condition("mp", sluicev1beta1.StalledCondition) }).Should(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", "UnsupportedFeature"),
		HaveField("Message", ContainSubstring("cannot send each port of spec.service.portDiscovery to its own backend port")),
		HaveField("Message", ContainSubstring("spec.service.gatewayAPI.routeRef"))))
	f.g.Consistently(func() error { return f.get(&gatewayv1.HTTPRoute{}, "mp") }, 2*time.Second).ShouldNot(Succeed())
}
