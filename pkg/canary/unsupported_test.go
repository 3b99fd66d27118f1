package canary_test

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A Canary asking its provider for what it cannot do is Stalled
// (UnsupportedFeature) with a message naming what the provider supports and
// which registered providers can do it.
func TestCanary_UnsupportedFeatureNamesTheSupportedList(t *testing.T) {
	f := newFixture(t)
	f.deployment("podinfo", "1.0.0", 1)
	f.canary("podinfo", "podinfo", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Mirror = true
	})
	f.g.Eventually(func() *metav1.Condition { return f.condition("podinfo", "Stalled") }).Should(And(
		HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", "UnsupportedFeature"),
		HaveField("Message", "provider kubernetes cannot mirror traffic: remove analysis.mirror (provider kubernetes supports strategies blue-green; capabilities none; providers with mirror: gatewayapi, gatewayapi:v1, gatewayapi:v1beta1, istio)"),
	))
}
