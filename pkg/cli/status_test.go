package cli

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// releaseStatus is a Canary two steps into a release, the second step failing.
func releaseStatus() sluicev1beta1.CanaryStatus {
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	return sluicev1beta1.CanaryStatus{
		Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 20, FailedChecks: 1, Revision: "7f9c2d",
		LastTransitionTime: &metav1.Time{Time: t0},
		LastStepTime:       &metav1.Time{Time: t0.Add(time.Minute)},
		Conditions: []metav1.Condition{
			{Type: sluicev1beta1.ProgressingCondition, Status: metav1.ConditionTrue, Reason: "Analysing", Message: "step 2 of 5", LastTransitionTime: metav1.NewTime(t0)},
			{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "Progressing", Message: "a release is in progress", LastTransitionTime: metav1.NewTime(t0)},
		},
		History: []sluicev1beta1.CanaryStep{
			{Time: metav1.NewTime(t0.Add(30 * time.Second)), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 10, Message: "weight 10",
				Checks: []sluicev1beta1.CheckResult{
					{Name: "load-test", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed, Message: "HTTP 200"},
					{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckPassed, Value: ptrTo("99.7"), Message: "99.7 is within [99, +Inf]"},
				}},
			{Time: metav1.NewTime(t0.Add(time.Minute)), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 20, Message: "1 failed check",
				Checks: []sluicev1beta1.CheckResult{
					{Name: "load-test", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed, Message: "HTTP 200"},
					{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckFailed, Value: ptrTo("91.3"), Message: "91.3 is outside [99, +Inf]"},
					{Name: "latency", Kind: "metric", Outcome: sluicev1beta1.CheckError, Reason: "QueryFailed", Message: "prometheus unreachable", Held: true},
					{Name: "p99", Kind: "metric", Outcome: sluicev1beta1.CheckFailed, Value: ptrTo("900"), Message: "900 is outside [-Inf, 500]", DryRun: true},
				}},
		},
	}
}

func TestStatus_ShowsTheStepHistoryWithEveryCheckAndTheConditions(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newCanary(t, ns, "podinfo", releaseStatus())

	r := kubectlSluice(ctx, "", "status", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	out := r.out.String()
	for _, want := range []string{
		"Canary:         " + ns + "/podinfo",
		"Provider:       istio",
		"Strategy:       canary",
		"Phase:          Progressing (since ",
		"Weight:         20% (max 50%)",
		"Failed checks:  1/3",
		"Revision:       7f9c2d",
		"Last step:      ",
		"(interval 30s)",
		"#1 2026-01-02T03:04:30Z",
		"Progressing  weight 10%  iteration 0",
		"#2 2026-01-02T03:05:00Z",
		"1 failed check",
	} {
		g.Expect(out).To(ContainSubstring(want))
	}
	// Condition and check rows, cell by cell.
	g.Expect(rows(out)).To(ContainElements(
		[]string{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"},
		HaveExactElements("Progressing", "True", "Analysing", Not(BeEmpty()), "step", "2", "of", "5"),
		[]string{"KIND", "NAME", "OUTCOME", "VALUE", "MESSAGE"},
		[]string{"metric", "request-success-rate", "Passed", "99.7", "99.7", "is", "within", "[99,", "+Inf]"},
		[]string{"metric", "request-success-rate", "Failed", "91.3", "91.3", "is", "outside", "[99,", "+Inf]"},
		[]string{"metric", "latency", "Error", "(held)", "-", "QueryFailed:", "prometheus", "unreachable"},
		[]string{"metric", "p99", "Failed", "(dry", "run)", "900", "900", "is", "outside", "[-Inf,", "500]"},
		[]string{"webhook", "load-test", "Passed", "-", "HTTP", "200"},
	))

	r = kubectlSluice(ctx, "", "status", "podinfo", "-n", ns, "-o", "json")
	g.Expect(r.err).NotTo(HaveOccurred())
	var c sluicev1beta1.Canary
	g.Expect(json.Unmarshal([]byte(r.out.String()), &c)).To(Succeed())
	g.Expect(c.Status.History).To(HaveLen(2))
	g.Expect(*c.Status.History[1].Checks[1].Value).To(Equal("91.3"))
}

func TestStatus_ANewCanaryHasNoHistory(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "fresh", sluicev1beta1.CanaryStatus{}, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderKubernetes
		c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight = 0, 0
		c.Spec.Analysis.Iterations = 4
	})
	r := kubectlSluice(context.Background(), "", "status", "fresh", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(ContainSubstring("Pending (not reconciled yet: is the Sluice manager running?)"))
	g.Expect(r.out.String()).To(ContainSubstring("Strategy:       blue-green"))
	g.Expect(r.out.String()).To(ContainSubstring("Iterations:     0/4"))
	g.Expect(r.out.String()).To(ContainSubstring("no analysis step yet"))
}

// Given a Canary whose last action failed (Ready=False, ActionFailed), the
// status says so before anything else, with the engine's message.
func TestStatus_ShowsAFailedAction(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	st := releaseStatus()
	const msg = `SetRoutes: failed to patch the HTTPRoute: httproutes.gateway.networking.k8s.io "podinfo" is forbidden`
	st.Conditions[1] = metav1.Condition{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ActionFailed",
		Message: msg, LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Minute))}
	newCanary(t, ns, "stuck", st)
	r := kubectlSluice(context.Background(), "", "status", "stuck", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(ContainSubstring("Action failed:  " + msg + " (since "))
	g.Expect(rows(r.out.String())).To(ContainElement(ContainElements("Ready", "False", "ActionFailed")))

	// A Canary whose actions succeed has no such line.
	newCanary(t, ns, "fine", releaseStatus())
	r = kubectlSluice(context.Background(), "", "status", "fine", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).NotTo(ContainSubstring("Action failed:"))
	g.Expect(r.out.String()).NotTo(ContainSubstring("Observe failed:"))
}

// Given a Canary whose engine cannot read its target (Ready=False,
// ObserveFailed), the status says so before anything else, with the
// engine's message, and does not call it a failed action.
func TestStatus_ShowsAFailedObservation(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	st := releaseStatus()
	const msg = `failed to get the target: deployments.apps "podinfo" is forbidden`
	st.Conditions[1] = metav1.Condition{Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "ObserveFailed",
		Message: msg, LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Minute))}
	newCanary(t, ns, "blind", st)
	r := kubectlSluice(context.Background(), "", "status", "blind", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(ContainSubstring("Observe failed: " + msg + " (since "))
	g.Expect(r.out.String()).NotTo(ContainSubstring("Action failed:"))
	g.Expect(rows(r.out.String())).To(ContainElement(ContainElements("Ready", "False", "ObserveFailed")))
}
