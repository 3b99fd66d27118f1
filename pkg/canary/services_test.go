package canary_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestCanary_RepairsTheApexSelector: someone else (a hand edit, an apply
// from Git) points the apex Service elsewhere; the engine points it back at
// the primary, and its writes carry its own field manager.
func TestCanary_RepairsTheApexSelector(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("apex", "1.0", 1)
	f.canary("apex", "apex", func(c *sluicev1beta1.Canary) { c.Spec.Provider = sluicev1beta1.ProviderIstio })
	f.waitPhase("apex", sluicev1beta1.CanaryPhaseInitialized)

	svc := &corev1.Service{}
	f.update(svc, "apex", func() { svc.Spec.Selector = map[string]string{"app": "apex"} })
	f.g.Eventually(func(g Gomega) {
		g.Expect(f.get(svc, "apex")).To(Succeed())
		g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "apex-primary"}))
	}).Should(Succeed())
	var managers []string
	for _, e := range svc.ManagedFields {
		managers = append(managers, e.Manager)
	}
	f.g.Expect(managers).To(ContainElement(sluicev1beta1.FieldManagerEngine))
}
