package canary_test

import (
	"net/http"
	"testing"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// kstatusOf reads a Canary from the API server and computes its status the
// way Flux, Argo CD and GitSync's wait do, with the kstatus library.
func (f *fixture) kstatusOf(name string) func() (kstatus.Status, error) {
	return func() (kstatus.Status, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(sluicev1beta1.GroupVersion.WithKind("Canary"))
		if err := f.get(u, name); err != nil {
			return "", err
		}
		res, err := kstatus.Compute(u)
		if err != nil {
			return "", err
		}
		return res.Status, nil
	}
}

// Given a Canary, kstatus reads it Current once initialized and after a
// promotion, InProgress while a release runs, and Failed after a rollback
// (Stalled, with the rollback's reason) until a new revision starts.
func TestCanary_KStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("ks", "1.0", 1)
	f.canary("ks", "ks", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 1000 // promoted by hand below
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("load", "rollout", f.hooks.url("/ks-load"))}
	})
	f.waitPhase("ks", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.kstatusOf("ks")).Should(Equal(kstatus.CurrentStatus))

	f.setImage("ks", "2.0")
	f.waitPhase("ks", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Expect(f.kstatusOf("ks")()).To(Equal(kstatus.InProgressStatus))
	f.g.Expect(f.condition("ks", sluicev1beta1.ReconcilingCondition)).To(HaveField("Status", metav1.ConditionTrue))
	f.annotate("ks", sluicev1beta1.PromoteAnnotation, "1")
	f.waitPhase("ks", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.kstatusOf("ks")()).To(Equal(kstatus.CurrentStatus))

	f.hooks.set("/ks-load", http.StatusInternalServerError)
	f.setImage("ks", "3.0")
	f.waitPhase("ks", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(f.kstatusOf("ks")()).To(Equal(kstatus.FailedStatus))
	f.g.Expect(f.condition("ks", sluicev1beta1.StalledCondition)).To(HaveField("Reason", "ThresholdReached"))
	f.g.Expect(f.condition("ks", sluicev1beta1.ReconcilingCondition)).To(HaveField("Status", metav1.ConditionFalse))

	// A new revision is a new attempt: InProgress again, no longer Stalled.
	f.hooks.set("/ks-load", http.StatusOK)
	f.setImage("ks", "4.0")
	f.waitPhase("ks", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Expect(f.kstatusOf("ks")()).To(Equal(kstatus.InProgressStatus))
	f.g.Expect(f.condition("ks", sluicev1beta1.StalledCondition)).To(BeNil())
}
