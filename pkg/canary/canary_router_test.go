package canary_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Given a progressive canary on the Gateway API router, the engine drives
// the HTTPRoute's weights 0 → 50 → 100 and back to the promoted primary.
func TestCanary_GatewayAPIRouter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("gw", "1.0", 1)
	f.canary("gw", "gw", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.Hosts = []string{"gw.example.com"}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 100}
	})
	f.waitPhase("gw", sluicev1beta1.CanaryPhaseInitialized)
	weights := func() (string, error) {
		r := &gatewayv1.HTTPRoute{}
		if err := f.get(r, "gw"); err != nil {
			return "", err
		}
		var out []string
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				w := int32(1)
				if b.Weight != nil {
					w = *b.Weight
				}
				out = append(out, string(b.Name)+"="+strconv.Itoa(int(w)))
			}
		}
		return strings.Join(out, ","), nil
	}
	f.g.Expect(weights()).To(Equal("gw-primary=100,gw-canary=0"))
	f.setImage("gw", "2.0")
	f.g.Eventually(weights).Should(Equal("gw-primary=50,gw-canary=50"))
	f.g.Eventually(weights).Should(Equal("gw-primary=0,gw-canary=100"))
	f.waitPhase("gw", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(weights()).To(Equal("gw-primary=100,gw-canary=0"))
	f.g.Expect(f.image("gw-primary")()).To(Equal("example.com/app:2.0"))
}
