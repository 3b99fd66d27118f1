package canary_test

import (
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Given a target with an HPA, the primary gets <hpa>-primary, kept in step.
func TestCanary_HPA(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("scaled", "1.0", 2)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "scaled", Namespace: f.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "scaled"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 4,
		},
	}
	f.g.Expect(env.Client.Create(f.ctx, hpa)).To(Succeed())
	f.canary("scaled", "scaled", func(c *sluicev1beta1.Canary) {
		c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "scaled"}
	})
	f.waitPhase("scaled", sluicev1beta1.CanaryPhaseInitialized)
	primaryHPA := &autoscalingv2.HorizontalPodAutoscaler{}
	f.g.Expect(f.get(primaryHPA, "scaled-primary")).To(Succeed())
	f.g.Expect(primaryHPA.Spec.ScaleTargetRef.Name).To(Equal("scaled-primary"))
	f.g.Expect(primaryHPA.Spec.MaxReplicas).To(Equal(int32(4)))
	f.update(hpa, "scaled", func() { hpa.Spec.MaxReplicas = 8 })
	f.g.Eventually(func() (int32, error) {
		err := f.get(primaryHPA, "scaled-primary")
		return primaryHPA.Spec.MaxReplicas, err
	}).Should(Equal(int32(8)))
}

// Given a long analysis, the promote, abort and retry annotations act once each.
func TestCanary_ManualControl(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("manual", "1.0", 1)
	f.canary("manual", "manual", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 1000 })
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseInitialized)

	f.setImage("manual", "2.0")
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseProgressing)
	f.annotate("manual", sluicev1beta1.PromoteAnnotation, "1")
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("manual-primary")()).To(Equal("example.com/app:2.0"))

	f.setImage("manual", "3.0")
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseProgressing)
	f.annotate("manual", sluicev1beta1.AbortAnnotation, "1")
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(f.image("manual-primary")()).To(Equal("example.com/app:2.0"))
	f.g.Eventually(f.eventReasons("manual")).Should(ContainElement("Aborted"))

	f.annotate("manual", sluicev1beta1.RetryAnnotation, "1")
	f.waitPhase("manual", sluicev1beta1.CanaryPhaseProgressing)
	f.annotate("manual", sluicev1beta1.PromoteAnnotation, "2")
	c := f.waitPhase("manual", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("manual-primary")()).To(Equal("example.com/app:3.0"))
	f.g.Expect(c.Status.HandledRequests).To(Equal(&sluicev1beta1.HandledRequests{Promote: "2", Abort: "1", Retry: "1"}))
	// A request already handled does nothing.
	f.g.Consistently(f.phase("manual"), 2*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
}

// Given an initialized Canary, when it is deleted, then the target is scaled
// back up and ready and the apex Service points at it before the primary goes.
func TestCanary_DeletionRestoresTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("gone", "1.0", 2)
	c := f.canary("gone", "gone")
	f.waitPhase("gone", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.replicas("gone")).Should(Equal(int32(0)))
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())

	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "gone")) }).Should(BeTrue())
	// When the Canary is gone the target already serves.
	d := &appsv1.Deployment{}
	f.g.Expect(f.get(d, "gone")).To(Succeed())
	f.g.Expect(*d.Spec.Replicas).To(Equal(int32(2)))
	f.g.Expect(d.Status.AvailableReplicas).To(Equal(int32(2)))
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "gone")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "gone"}))
	f.g.Expect(apex.OwnerReferences).To(BeEmpty())
	f.g.Eventually(f.eventReasons("gone")).Should(ContainElements("Terminating", "Terminated"))
	// The primary and the generated Services are garbage-collected; the apex stays.
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&appsv1.Deployment{}, "gone-primary")) }).Should(BeTrue())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&corev1.Service{}, "gone-canary")) }).Should(BeTrue())
	f.g.Consistently(func() error { return f.get(&corev1.Service{}, "gone") }, 2*time.Second).Should(Succeed())
}

// Given a finalizer of the test's own, the Canary stays visible in Terminated.
func TestCanary_Terminated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("term", "1.0", 1)
	c := f.canary("term", "term", func(c *sluicev1beta1.Canary) { c.Finalizers = []string{"test.sluice.dev/hold"} })
	f.waitPhase("term", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.waitPhase("term", sluicev1beta1.CanaryPhaseTerminated)
	f.update(c, "term", func() { c.Finalizers = nil })
}

// Given --max-concurrent-rollouts=1, a second release waits in Waiting
// (reason ConcurrencyLimit) and starts when the first one finishes.
func TestCanary_ConcurrencyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withMaxConcurrentRollouts(1))
	for _, n := range []string{"first", "second"} {
		f.deployment(n, "1.0", 1)
		f.canary(n, n, func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 3 })
		f.waitPhase(n, sluicev1beta1.CanaryPhaseInitialized)
	}
	f.setImage("first", "2.0")
	f.waitPhase("first", sluicev1beta1.CanaryPhaseProgressing)
	f.setImage("second", "2.0")
	f.waitPhase("second", sluicev1beta1.CanaryPhaseWaiting)
	f.g.Expect(f.condition("second", sluicev1beta1.ProgressingCondition).Reason).To(Equal("ConcurrencyLimit"))
	first := f.waitPhase("first", sluicev1beta1.CanaryPhaseSucceeded)
	second := f.waitPhase("second", sluicev1beta1.CanaryPhaseSucceeded)
	// The second release started only after the first one had finished.
	var started time.Time
	for _, s := range second.Status.History {
		if started.IsZero() || s.Time.Time.Before(started) {
			started = s.Time.Time
		}
	}
	f.g.Expect(started).NotTo(BeZero())
	f.g.Expect(started.Before(first.Status.LastTransitionTime.Time)).To(BeFalse(), "the second release ran while the first was in progress")
}

// Given a progressive canary, when the controller stops in the middle of a
// rollout and a new one starts, then the rollout finishes with every weight
// step taken exactly once.
func TestCanary_RestartMidRollout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("resume", "1.0", 1)
	f.canary("resume", "resume", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderIstio
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1, StepWeight: 10, MaxWeight: 50}
	})
	f.waitPhase("resume", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("resume", "2.0")
	f.g.Eventually(f.history("resume")).Should(Equal("10,20"))
	f.stop()
	time.Sleep(3 * time.Second) // a step falls due while no controller runs
	f.stop = f.startManager()
	f.waitPhase("resume", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.history("resume")()).To(Equal("10,20,30,40,50,0"))
}

// Given a DaemonSet target, its primary is a DaemonSet and the target is
// taken off every node between releases.
func TestCanary_DaemonSet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: f.ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "example.com/agent:1.0"}}}},
		},
	}
	f.g.Expect(env.Client.Create(f.ctx, ds)).To(Succeed())
	f.canary("agent", "agent", func(c *sluicev1beta1.Canary) {
		c.Spec.TargetRef.Kind = "DaemonSet"
		// A DaemonSet's pod comes back only after the old one is gone: allow
		// for a busy machine.
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](180)
	})
	f.waitPhase("agent", sluicev1beta1.CanaryPhaseInitialized)
	primary := &appsv1.DaemonSet{}
	f.g.Expect(f.get(primary, "agent-primary")).To(Succeed())
	f.g.Eventually(func() (map[string]string, error) {
		err := f.get(ds, "agent")
		return ds.Spec.Template.Spec.NodeSelector, err
	}).Should(HaveKeyWithValue(sluicev1beta1.ScaleToZeroNodeSelector, "true"))
	f.update(ds, "agent", func() { ds.Spec.Template.Spec.Containers[0].Image = "example.com/agent:2.0" })
	f.waitPhase("agent", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.get(primary, "agent-primary")).To(Succeed())
	f.g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:2.0"))
	f.g.Expect(primary.Spec.Template.Spec.NodeSelector).NotTo(HaveKey(sluicev1beta1.ScaleToZeroNodeSelector))
}

// Given a Canary whose target does not exist, it is Stalled with a reason
// until the target appears.
func TestCanary_StalledUntilTargetExists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.canary("later", "later")
	f.g.Eventually(func() string {
		cond := f.condition("later", sluicev1beta1.StalledCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason + ": " + cond.Message
	}).Should(Equal("TargetNotFound: Deployment later not found in namespace " + f.ns))
	f.deployment("later", "1.0", 1)
	f.waitPhase("later", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(f.condition("later", sluicev1beta1.StalledCondition)).To(BeNil())
}

// Given confirm-rollout and confirm-promotion gates, a release waits in
// Waiting, then in WaitingPromotion, until each gate opens.
func TestCanary_Gates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hooks.set("/rollout-gate", http.StatusForbidden)
	f.hooks.set("/promotion-gate", http.StatusForbidden)
	f.deployment("gated", "1.0", 1)
	f.canary("gated", "gated", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{
			hook("rollout-gate", "confirm-rollout", f.hooks.url("/rollout-gate")),
			hook("promotion-gate", "confirm-promotion", f.hooks.url("/promotion-gate")),
		}
	})
	f.waitPhase("gated", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.replicas("gated")).Should(Equal(int32(0)), "the target is scaled down once the traffic drained")
	f.setImage("gated", "2.0")
	f.waitPhase("gated", sluicev1beta1.CanaryPhaseWaiting)
	f.g.Expect(f.condition("gated", sluicev1beta1.ProgressingCondition).Reason).To(Equal("ConfirmRollout"))
	f.g.Expect(f.replicas("gated")()).To(Equal(int32(0)), "the canary must not be scaled up before confirm-rollout")
	f.hooks.set("/rollout-gate", http.StatusOK)
	f.waitPhase("gated", sluicev1beta1.CanaryPhaseWaitingPromotion)
	f.g.Consistently(f.phase("gated"), 2*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseWaitingPromotion))
	f.hooks.set("/promotion-gate", http.StatusOK)
	f.waitPhase("gated", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("gated-primary")()).To(Equal("example.com/app:2.0"))
}
