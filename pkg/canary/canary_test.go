package canary_test

import (
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func hook(name, typ, url string) sluicev1beta1.CanaryWebhook {
	return sluicev1beta1.CanaryWebhook{Name: name, Type: typ, URL: url, Timeout: "5s"}
}

// Given a Deployment and a blue/green Canary with the kubernetes provider,
// when the Canary is created, then the primary, the Services and the takeover
// are in place; when a new image is pushed, then it is analysed through its
// webhooks and promoted.
func TestCanary_InitializeAndPromote(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("podinfo", "1.0", 2)
	f.canary("podinfo", "podinfo", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{
			hook("smoke", "pre-rollout", f.hooks.url("/smoke")),
			hook("load", "rollout", f.hooks.url("/load")),
			hook("done", "post-rollout", f.hooks.url("/done")),
		}
	})

	c := f.waitPhase("podinfo", sluicev1beta1.CanaryPhaseInitialized)
	primary := &appsv1.Deployment{}
	f.g.Expect(f.get(primary, "podinfo-primary")).To(Succeed())
	f.g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:1.0"))
	f.g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "podinfo-primary"}))
	f.g.Expect(primary.Spec.Template.Labels["app"]).To(Equal("podinfo-primary"))
	f.g.Expect(metav1.IsControlledBy(primary, c)).To(BeTrue())
	f.g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	for name, sel := range map[string]string{"podinfo": "podinfo-primary", "podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		svc := &corev1.Service{}
		f.g.Expect(f.get(svc, name)).To(Succeed())
		f.g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": sel}), "Service %s", name)
		f.g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(80)))
		f.g.Expect(svc.Spec.Ports[0].TargetPort.IntVal).To(Equal(int32(8080)))
	}
	f.g.Eventually(f.replicas("podinfo")).Should(Equal(int32(0)))
	f.g.Expect(c.Status.LastAppliedSpec).NotTo(BeEmpty())
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal(c.Status.LastAppliedSpec))
	f.g.Expect(f.condition("podinfo", sluicev1beta1.PromotedCondition).Status).To(Equal(metav1.ConditionTrue))
	f.g.Expect(f.condition("podinfo", sluicev1beta1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))

	f.setImage("podinfo", "2.0")
	f.waitPhase("podinfo", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Expect(f.condition("podinfo", sluicev1beta1.PromotedCondition).Status).To(Equal(metav1.ConditionFalse))
	c = f.waitPhase("podinfo", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("podinfo-primary")()).To(Equal("example.com/app:2.0"))
	f.g.Eventually(f.replicas("podinfo")).Should(Equal(int32(0)))
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal(c.Status.LastAppliedSpec))
	f.g.Expect(f.hooks.count("/smoke")()).To(BeNumerically(">=", 1))
	f.g.Expect(f.hooks.count("/load")()).To(BeNumerically(">=", 2))
	f.g.Eventually(f.hooks.count("/done")).Should(BeNumerically(">=", 1))
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "podinfo")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "podinfo-primary"}))
	f.g.Expect(f.condition("podinfo", sluicev1beta1.PromotedCondition).Status).To(Equal(metav1.ConditionTrue))
	f.g.Eventually(f.eventReasons("podinfo")).Should(ContainElements("Initialized", "Progressing", "Promoting", "Finalising", "Succeeded"))
}

// Given a progressive canary on a weighted router, when a new revision passes
// every check, then traffic goes 25% → 50% and back to the promoted primary.
func TestCanary_ProgressiveWeights(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("web", "1.0", 1)
	f.canary("web", "web", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderIstio
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
			StepWeight: 25, MaxWeight: 50, Mirror: true}
	})
	f.waitPhase("web", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("web", "2.0")
	f.waitPhase("web", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.history("web")()).To(Equal("0m,25,50,0"))
	f.g.Expect(f.image("web-primary")()).To(Equal("example.com/app:2.0"))
}

// Given a rollout webhook that fails, when a new revision is analysed, then it
// is rolled back at the threshold and the primary never runs it.
func TestCanary_RollbackAtThreshold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hooks.set("/load", http.StatusInternalServerError)
	f.deployment("api", "1.0", 1)
	f.canary("api", "api", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 5
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("load", "", f.hooks.url("/load"))}
	})
	f.waitPhase("api", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("api", "2.0")
	c := f.waitPhase("api", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.FailedChecks).To(Equal(int32(2)))
	f.g.Expect(c.Status.LastPromotedSpec).NotTo(Equal(c.Status.LastAppliedSpec))
	f.g.Expect(f.image("api-primary")()).To(Equal("example.com/app:1.0"))
	f.g.Eventually(f.replicas("api")).Should(Equal(int32(0)))
	f.g.Expect(c.Status.History).NotTo(BeEmpty())
	var messages []string
	for _, s := range c.Status.History {
		for _, ch := range s.Checks {
			messages = append(messages, ch.Message)
		}
	}
	f.g.Expect(messages).To(ContainElement(ContainSubstring("500 Internal Server Error")))
	f.g.Expect(f.condition("api", sluicev1beta1.PromotedCondition).Status).To(Equal(metav1.ConditionFalse))
	f.g.Expect(f.condition("api", sluicev1beta1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
	f.g.Eventually(f.eventReasons("api")).Should(ContainElements("CheckFailed", "ThresholdReached", "Failed"))
}

// Given a new revision whose pods crash-loop (kwok stage pod-crashloop), when the progress
// deadline passes, then it is rolled back instead of staying Progressing.
func TestCanary_ProgressDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("crash", "1.0", 1)
	f.canary("crash", "crash", func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
		c.Spec.Analysis.Iterations = 30 // the analysis outlasts the first crash
	})
	f.waitPhase("crash", sluicev1beta1.CanaryPhaseInitialized)
	d := &appsv1.Deployment{}
	f.update(d, "crash", func() {
		d.Spec.Template.Spec.Containers[0].Image = "example.com/app:2.0"
		d.Spec.Template.Labels["sluice.dev/test-crashloop"] = "true"
	})
	f.waitPhase("crash", sluicev1beta1.CanaryPhaseProgressing)
	f.waitPhase("crash", sluicev1beta1.CanaryPhaseFailed)
	f.g.Eventually(f.eventReasons("crash")).Should(ContainElement("ProgressDeadlineExceeded"))
	// Flagger sent no alert for a canary that never became ready; Sluice does.
	f.g.Eventually(f.alerts.list).Should(ContainElement("crash/Failed/error"))
	f.g.Expect(f.image("crash-primary")()).To(Equal("example.com/app:1.0"))
	f.g.Eventually(f.replicas("crash")).Should(Equal(int32(0)))
}

// Given an analysis in progress, when another revision arrives, then the
// analysis restarts for it and the last one is promoted.
func TestCanary_NewRevisionMidAnalysis(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("restart", "1.0", 1)
	f.canary("restart", "restart", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 6 })
	f.waitPhase("restart", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("restart", "2.0")
	f.g.Eventually(func() (int32, error) {
		c := &sluicev1beta1.Canary{}
		err := f.get(c, "restart")
		return c.Status.Iterations, err
	}).Should(BeNumerically(">=", 2))
	f.setImage("restart", "3.0")
	f.g.Eventually(f.eventReasons("restart")).Should(ContainElement("Restarted"))
	f.waitPhase("restart", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("restart-primary")()).To(Equal("example.com/app:3.0"))
}

// Given a target that uses a ConfigMap, then the primary runs on a copy of it
// (binaryData included), and a change of the ConfigMap alone starts a release
// that updates the copy; a ConfigMap that opted out is neither copied nor tracked.
func TestCanary_ConfigTracking(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: f.ns},
		Data: map[string]string{"level": "info"}, BinaryData: map[string][]byte{"blob": {0, 1, 2}}}
	shared := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: f.ns,
		Annotations: map[string]string{sluicev1beta1.ConfigTrackingAnnotation: "disabled"}}, Data: map[string]string{"a": "b"}}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: f.ns}, Data: map[string][]byte{"t": []byte("s3cr3t")}}
	f.g.Expect(env.Client.Create(f.ctx, settings)).To(Succeed())
	f.g.Expect(env.Client.Create(f.ctx, shared)).To(Succeed())
	f.g.Expect(env.Client.Create(f.ctx, token)).To(Succeed())
	f.deployment("cfg", "1.0", 1, func(d *appsv1.Deployment) {
		ctr := &d.Spec.Template.Spec.Containers[0]
		ctr.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
		ctr.Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "token"}, Key: "t"}}}}
		d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}
	})
	f.canary("cfg", "cfg")
	c := f.waitPhase("cfg", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(c.Status.TrackedConfigs).To(HaveKey("configmap/settings"))
	f.g.Expect(c.Status.TrackedConfigs).To(HaveKey("secret/token"))
	f.g.Expect(c.Status.TrackedConfigs).NotTo(HaveKey("configmap/shared"))
	cp := &corev1.ConfigMap{}
	f.g.Expect(f.get(cp, "settings-primary")).To(Succeed())
	f.g.Expect(cp.Data).To(Equal(map[string]string{"level": "info"}))
	f.g.Expect(cp.BinaryData).To(Equal(map[string][]byte{"blob": {0, 1, 2}}))
	sec := &corev1.Secret{}
	f.g.Expect(f.get(sec, "token-primary")).To(Succeed())
	f.g.Expect(f.get(&corev1.ConfigMap{}, "shared-primary")).NotTo(Succeed())
	primary := &appsv1.Deployment{}
	f.g.Expect(f.get(primary, "cfg-primary")).To(Succeed())
	ps := primary.Spec.Template.Spec
	f.g.Expect(ps.Containers[0].EnvFrom[0].ConfigMapRef.Name).To(Equal("settings-primary"))
	f.g.Expect(ps.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name).To(Equal("token-primary"))
	f.g.Expect(ps.Volumes[0].ConfigMap.Name).To(Equal("shared"))

	f.update(settings, "settings", func() { settings.Data["level"] = "debug" })
	f.waitPhase("cfg", sluicev1beta1.CanaryPhaseProgressing)
	f.waitPhase("cfg", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.get(cp, "settings-primary")).To(Succeed())
	f.g.Expect(cp.Data).To(Equal(map[string]string{"level": "debug"}))

	// A change of the opted-out ConfigMap starts nothing.
	f.update(shared, "shared", func() { shared.Data["a"] = "c" })
	f.g.Consistently(f.phase("cfg"), 3*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
}

// Given skipAnalysis, a new revision is promoted once ready, without calling
// its (failing) webhooks.
func TestCanary_SkipAnalysis(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hooks.set("/load", http.StatusInternalServerError)
	f.deployment("skip", "1.0", 1)
	f.canary("skip", "skip", func(c *sluicev1beta1.Canary) {
		c.Spec.SkipAnalysis = true
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("load", "rollout", f.hooks.url("/load"))}
	})
	f.waitPhase("skip", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("skip", "2.0")
	f.waitPhase("skip", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("skip-primary")()).To(Equal("example.com/app:2.0"))
	f.g.Expect(f.hooks.count("/load")()).To(Equal(0))
}

// Given a suspended Canary, a new revision waits until it is resumed.
func TestCanary_Suspend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("paused", "1.0", 1)
	f.canary("paused", "paused")
	f.waitPhase("paused", sluicev1beta1.CanaryPhaseInitialized)
	c := &sluicev1beta1.Canary{}
	f.update(c, "paused", func() { c.Spec.Suspend = true })
	f.g.Eventually(func() string {
		cond := f.condition("paused", sluicev1beta1.ProgressingCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason
	}).Should(Equal("Suspended"))
	f.setImage("paused", "2.0")
	f.g.Consistently(f.phase("paused"), 3*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	f.update(c, "paused", func() { c.Spec.Suspend = false })
	f.waitPhase("paused", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("paused-primary")()).To(Equal("example.com/app:2.0"))
}

// Given webhooks of every type on a progressive canary: the event hook
// receives the events, confirm-traffic-increase holds the weight until it
// opens, and a rollback hook that opens rolls the release back.
func TestCanary_WebhookTypes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hooks.set("/traffic-gate", http.StatusForbidden)
	f.hooks.set("/rollback", http.StatusForbidden)
	f.deployment("hooked", "1.0", 1)
	f.canary("hooked", "hooked", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderIstio
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2, StepWeight: 20, MaxWeight: 100,
			Webhooks: []sluicev1beta1.CanaryWebhook{
				hook("events", "event", f.hooks.url("/events")),
				hook("traffic-gate", "confirm-traffic-increase", f.hooks.url("/traffic-gate")),
				hook("rollback", "rollback", f.hooks.url("/rollback")),
			}}
	})
	f.waitPhase("hooked", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.hooks.count("/events")).Should(BeNumerically(">=", 1), "the Initialized event reached the event hook")
	f.setImage("hooked", "2.0")
	f.waitPhase("hooked", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Eventually(f.hooks.count("/traffic-gate")).Should(BeNumerically(">=", 2))
	f.g.Expect(f.history("hooked")()).To(Equal(""), "the weight moved while confirm-traffic-increase was closed")
	f.hooks.set("/traffic-gate", http.StatusOK)
	f.g.Eventually(f.history("hooked")).Should(HavePrefix("20,40"))
	f.hooks.set("/rollback", http.StatusOK)
	f.waitPhase("hooked", sluicev1beta1.CanaryPhaseFailed)
	f.g.Eventually(f.eventReasons("hooked")).Should(ContainElement("RollbackRequested"))
	f.g.Expect(f.image("hooked-primary")()).To(Equal("example.com/app:1.0"))
	f.g.Eventually(f.alerts.list).Should(ContainElements("hooked/Progressing/info", "hooked/Failed/error"))
}
