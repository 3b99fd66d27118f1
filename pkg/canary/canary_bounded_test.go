package canary_test

import (
	"net/http"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// Given a Canary whose target can no longer become ready (its pods cannot
// be scheduled), when it is deleted, then the deletion ends after the
// progress deadline instead of hanging on the finalizer: the Canary says
// why (Stalled TargetNotReady, an event), and the primary, released from
// it, keeps serving through the apex Service.
func TestCanary_DeletionOfATargetThatNeverBecomesReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("stuck", "1.0", 1)
	c := f.canary("stuck", "stuck", func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
		c.Finalizers = []string{"test.sluice.dev/hold"} // keeps the last status visible
	})
	f.waitPhase("stuck", sluicev1beta1.CanaryPhaseInitialized)
	// Suspended, a template change starts no release; its pods never schedule.
	f.update(c, "stuck", func() { c.Spec.Suspend = true })
	d := &appsv1.Deployment{}
	f.update(d, "stuck", func() { d.Spec.Template.Spec.NodeSelector = map[string]string{"example.com/no-such-node": "true"} })
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())

	f.waitPhase("stuck", sluicev1beta1.CanaryPhaseTerminated)
	// The engine writes the Terminated status, then removes its finalizer in
	// a second patch: wait for that one too.
	f.g.Eventually(func() ([]string, error) {
		err := f.get(c, "stuck")
		return c.Finalizers, err
	}).Should(Equal([]string{"test.sluice.dev/hold"}))
	f.g.Expect(f.condition("stuck", sluicev1beta1.StalledCondition)).To(And(
		HaveField("Reason", "TargetNotReady"), HaveField("Message", ContainSubstring("stuck-primary is left serving"))))
	f.g.Eventually(f.eventReasons("stuck")).Should(ContainElement("TargetNotReady"))
	f.update(c, "stuck", func() { c.Finalizers = nil })
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "stuck")) }).Should(BeTrue())

	// The primary outlives the Canary and still serves through the apex Service.
	f.g.Consistently(func() (int32, error) {
		p := &appsv1.Deployment{}
		err := f.get(p, "stuck-primary")
		return p.Status.AvailableReplicas, err
	}, 3*time.Second, 200*time.Millisecond).Should(Equal(int32(1)))
	p := &appsv1.Deployment{}
	f.g.Expect(f.get(p, "stuck-primary")).To(Succeed())
	f.g.Expect(p.OwnerReferences).To(BeEmpty())
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "stuck")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "stuck-primary"}))
	f.g.Expect(apex.OwnerReferences).To(BeEmpty())
}

// Given a release rolled back (Failed), when the Canary is deleted, then the
// target is given the last promoted revision back before it is served: the
// rejected one never serves.
func TestCanary_DeletionInFailedRestoresThePromotedRevision(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hooks.set("/back-load", http.StatusInternalServerError)
	f.deployment("back", "1.0", 2)
	c := f.canary("back", "back", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 5
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("load", "rollout", f.hooks.url("/back-load"))}
	})
	f.waitPhase("back", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("back", "2.0")
	f.waitPhase("back", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(f.image("back")()).To(Equal("example.com/app:2.0"))

	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "back")) }).Should(BeTrue())
	d := &appsv1.Deployment{}
	f.g.Expect(f.get(d, "back")).To(Succeed())
	f.g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:1.0"))
	f.g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("app", "back"))
	f.g.Expect(*d.Spec.Replicas).To(Equal(int32(2)))
	f.g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)))
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "back")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "back"}))
	f.g.Eventually(f.eventReasons("back")).Should(ContainElements("Terminating", "Terminated"))
}

// Given a metric with onError: Hold whose Prometheus cannot be reached (a
// real refused connection), when a canary is held at 50 %, then past the
// progress deadline the release is rolled back (HoldExpired), Stalled is
// set, kstatus reads Failed and an alert is sent: it never sits at 50 %.
func TestCanary_HoldIsBoundedByTheProgressDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withMetrics(&metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: builtins(), DefaultAddress: "http://127.0.0.1:1"}))
	f.deployment("held", "1.0", 1)
	f.canary("held", "held", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderIstio // the weighted routes ConfigMap
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](30)
		c.Spec.Analysis.Iterations = 0
		c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight = 50, 100
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{Name: "success", Query: "vector(100)", OnError: sluicev1beta1.PolicyHold,
			ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}}}
	})
	f.waitPhase("held", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("held", "2.0")
	f.g.Eventually(func() (string, error) {
		cond := f.condition("held", sluicev1beta1.ReconcilingCondition)
		if cond == nil {
			return "", nil
		}
		return cond.Reason, nil
	}).Should(Equal("CheckHeld"))
	f.g.Expect(f.kstatusOf("held")()).To(Equal(kstatus.InProgressStatus))
	c := f.waitPhase("held", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.CanaryWeight).To(Equal(int32(0)))
	f.g.Expect(c.Status.HeldSince).To(BeNil())
	f.g.Expect(f.history("held")()).To(Equal("50,0"))
	f.g.Expect(f.condition("held", sluicev1beta1.StalledCondition)).To(HaveField("Reason", "HoldExpired"))
	f.g.Expect(f.kstatusOf("held")()).To(Equal(kstatus.FailedStatus))
	f.g.Eventually(f.eventReasons("held")).Should(ContainElements("CheckHeld", "HoldExpired", "Failed"))
	f.g.Eventually(f.alerts.list).Should(ContainElement("held/Failed/error"))
	f.g.Expect(f.image("held-primary")()).To(Equal("example.com/app:1.0"))
}
