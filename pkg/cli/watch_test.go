package cli

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func step(weight int32, checks ...sluicev1beta1.CheckResult) sluicev1beta1.CanaryStep {
	return sluicev1beta1.CanaryStep{Time: metav1.Now(), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: weight, Checks: checks}
}

func metric(name, value string, outcome sluicev1beta1.CheckOutcome) sluicev1beta1.CheckResult {
	return sluicev1beta1.CheckResult{Name: name, Kind: "metric", Outcome: outcome, Value: ptrTo(value), Message: value}
}

func TestWatch_FollowsTheWeightAndExits1WhenTheReleaseFails(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	c := newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing})

	r, wait := background(ctx, "watch", "podinfo", "-n", ns, "--timeout", "50s")
	g.Eventually(r.out.String).Should(ContainSubstring("[--------------------] weight 0%/50%  failed 0/3"))

	st := sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10,
		History: []sluicev1beta1.CanaryStep{step(10, metric("request-success-rate", "99.9", sluicev1beta1.CheckPassed))}}
	setCanaryStatus(t, c, st)
	g.Eventually(r.out.String).Should(ContainSubstring(
		"Progressing      [####----------------] weight 10%/50%  failed 0/3  checks: request-success-rate=99.9 Passed"))

	st.CanaryWeight, st.FailedChecks = 20, 1
	st.History = append(st.History, step(20, metric("request-success-rate", "90.1", sluicev1beta1.CheckFailed)))
	setCanaryStatus(t, c, st)
	g.Eventually(r.out.String).Should(ContainSubstring("weight 20%/50%  failed 1/3  checks: request-success-rate=90.1 Failed"))

	st.Phase, st.CanaryWeight, st.FailedChecks = sluicev1beta1.CanaryPhaseFailed, 0, 3
	st.History = append(st.History, sluicev1beta1.CanaryStep{Time: metav1.Now(), Phase: sluicev1beta1.CanaryPhaseFailed,
		Message: "Rolled back: 3 failed checks", Checks: []sluicev1beta1.CheckResult{metric("request-success-rate", "80.0", sluicev1beta1.CheckFailed)}})
	setCanaryStatus(t, c, st)

	err := wait()
	g.Expect(err).To(MatchError(ContainSubstring("canary " + ns + "/podinfo failed: Rolled back: 3 failed checks; request-success-rate (metric) Failed: 80.0")))
	g.Expect(ExitCode(err)).To(Equal(ExitFailed))
	g.Expect(r.out.String()).To(ContainSubstring("Failed           [--------------------] weight 0%/50%  failed 3/3"))
}

func TestWatch_ExitsZeroWhenTheReleaseSucceeds(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	c := newCanary(t, ns, "bg", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, Iterations: 1},
		func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight, c.Spec.Analysis.Iterations = 0, 0, 4
		})
	r, wait := background(ctx, "watch", "bg", "-n", ns)
	g.Eventually(r.out.String).Should(ContainSubstring("Progressing      [#####---------------] iteration 1/4 weight 0%"))
	setCanaryStatus(t, c, sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded, Iterations: 4,
		Conditions: []metav1.Condition{{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded",
			Message: "revision 7f9c promoted", LastTransitionTime: metav1.Now()}}})
	g.Expect(wait()).To(Succeed())
	g.Expect(r.out.String()).To(ContainSubstring("Canary " + ns + "/bg Succeeded: revision 7f9c promoted"))
}

func TestWatch_WaitStartIgnoresThePreviousFailure(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	c := newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseFailed})

	r, wait := background(ctx, "watch", "podinfo", "-n", ns, "--wait-start")
	g.Eventually(r.out.String).Should(ContainSubstring("Failed "))
	setCanaryStatus(t, c, sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10})
	g.Eventually(r.out.String).Should(ContainSubstring("Progressing "))
	setCanaryStatus(t, c, sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded})
	g.Expect(wait()).To(Succeed())
	g.Expect(r.out.String()).To(ContainSubstring("Canary " + ns + "/podinfo Succeeded"))
}

func TestWatch_ExitsOnStalledDeletedAndTimeout(t *testing.T) {
	ctx := context.Background()
	t.Run("stalled", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitializing,
			Conditions: []metav1.Condition{{Type: sluicev1beta1.StalledCondition, Status: metav1.ConditionTrue, Reason: "TargetNotFound",
				Message: "Deployment podinfo not found", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}})
		r := kubectlSluice(ctx, "", "watch", "podinfo", "-n", ns)
		g.Expect(r.err).To(MatchError(ContainSubstring("is stalled (TargetNotFound): Deployment podinfo not found")))
		g.Expect(ExitCode(r.err)).To(Equal(ExitFailed))
	})
	t.Run("deleted", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		c := newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing})
		r, wait := background(ctx, "watch", "podinfo", "-n", ns)
		g.Eventually(r.out.String).Should(ContainSubstring("Progressing"))
		g.Expect(env.Client.Delete(ctx, c)).To(Succeed())
		err := wait()
		g.Expect(err).To(MatchError(ContainSubstring("was deleted while watching")))
		g.Expect(ExitCode(err)).To(Equal(ExitFailed))
	})
	t.Run("timeout", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 30})
		r := kubectlSluice(ctx, "", "watch", "podinfo", "-n", ns, "--timeout", "1s")
		g.Expect(r.err).To(MatchError(ContainSubstring("timed out after 1s waiting for Canary " + ns + "/podinfo to finish (phase Progressing)")))
		g.Expect(ExitCode(r.err)).To(Equal(ExitTimeout))
	})
	t.Run("not found", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t)
		r := kubectlSluice(ctx, "", "watch", "missing", "-n", ns, "--timeout", "5s")
		g.Expect(r.err).To(MatchError(ContainSubstring("Canary missing not found in namespace " + ns)))
		g.Expect(ExitCode(r.err)).To(Equal(ExitFailed))
	})
}

func TestProgressBar(t *testing.T) {
	g := NewWithT(t)
	g.Expect(progressBar(0, 50)).To(Equal("[--------------------]"))
	g.Expect(progressBar(25, 50)).To(Equal("[##########----------]"))
	g.Expect(progressBar(50, 50)).To(Equal("[####################]"))
	g.Expect(progressBar(120, 100)).To(Equal("[####################]"))
	g.Expect(progressBar(3, 0)).To(Equal("[--------------------]"))
}
