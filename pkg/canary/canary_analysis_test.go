package canary_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// promChecker starts a real Prometheus for one test and returns a Checker
// whose inline queries go to it.
func promChecker(t *testing.T) *metrics.Checker {
	t.Helper()
	prom, err := testenv.StartPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	return &metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: builtins(), DefaultAddress: prom.URL}
}

// lastCheck finds the newest check of a name in a Canary's history.
func lastCheck(c *sluicev1beta1.Canary, name string) *sluicev1beta1.CheckResult {
	var out *sluicev1beta1.CheckResult
	for _, s := range c.Status.History {
		for i := range s.Checks {
			if s.Checks[i].Name == name {
				out = &s.Checks[i]
			}
		}
	}
	return out
}

// Given a success rate measured by a real Prometheus at 97 against
// thresholdRange min 99 and inconclusiveRange min 95, the release pauses
// (Progressing=AnalysisInconclusive, no failure counted, alerted once) until
// `kubectl sluice promote` sets the promote annotation; then it is promoted.
// A dry-run latency metric that fails all along never changes that.
func TestCanary_InconclusiveThenPromote(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withMetrics(promChecker(t)))
	f.deployment("incl", "1.0", 1)
	f.canary("incl", "incl", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 3
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{
			{Name: "success", Query: "vector(97)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
				InconclusiveRange: &sluicev1beta1.CanaryInconclusiveRange{Min: ptr.To(95.0)}},
			{Name: "latency", Query: "vector(900)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}, DryRun: true},
		}
	})
	f.waitPhase("incl", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("incl", "2.0")
	f.g.Eventually(func() string {
		if c := f.condition("incl", sluicev1beta1.ProgressingCondition); c != nil {
			return c.Reason
		}
		return ""
	}).Should(Equal("AnalysisInconclusive"), func() string { return f.describe("incl") })

	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, "incl")).To(Succeed())
	f.g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
	f.g.Expect(c.Status.InconclusiveSince).NotTo(BeNil())
	f.g.Expect(c.Status.FailedChecks).To(BeZero())
	cond := f.condition("incl", sluicev1beta1.ProgressingCondition)
	f.g.Expect(cond.Message).To(ContainSubstring("success 97 is inconclusive: outside [99, +Inf] but within inconclusiveRange [95, +Inf]"))
	success := lastCheck(c, "success")
	f.g.Expect(success.Outcome).To(Equal(sluicev1beta1.CheckInconclusive))
	f.g.Expect(*success.Value).To(Equal("97"))
	latency := lastCheck(c, "latency")
	f.g.Expect(latency.Outcome).To(Equal(sluicev1beta1.CheckFailed))
	f.g.Expect(latency.DryRun).To(BeTrue())
	f.g.Expect(c.Status.History[len(c.Status.History)-1].Message).To(ContainSubstring("dry run: latency Failed would have failed the step"))

	// Paused: several analysis intervals (1s) pass without a step or a
	// second alert.
	iterations := c.Status.Iterations
	f.g.Consistently(func() int32 {
		now := &sluicev1beta1.Canary{}
		_ = f.get(now, "incl")
		return now.Status.Iterations
	}, 3*time.Second, 250*time.Millisecond).Should(Equal(iterations))
	f.g.Expect(count(f.alerts.list(), "incl/AnalysisInconclusive/warn")).To(Equal(1), "alerted once: %v", f.alerts.list())
	f.g.Eventually(f.eventReasons("incl"), 10*time.Second).Should(ContainElements("AnalysisInconclusive", "StepCompleted"))

	f.annotate("incl", sluicev1beta1.PromoteAnnotation, "go-on")
	f.waitPhase("incl", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("incl-primary")()).To(Equal("example.com/app:2.0"))
	f.g.Expect(f.get(c, "incl")).To(Succeed())
	f.g.Expect(c.Status.InconclusiveSince).To(BeNil())
	f.g.Expect(c.Status.HandledRequests.Promote).To(Equal("go-on"))
}

// Given a dry-run metric that fails at every step on a real Prometheus and
// a real metric that passes, the release is promoted without a failed check,
// and every step is exported in an event.
func TestCanary_DryRunNeverFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withMetrics(promChecker(t)))
	f.deployment("dry", "1.0", 1)
	f.canary("dry", "dry", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 2
		c.Spec.Analysis.Threshold = 1
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{
			{Name: "success", Query: "vector(99.5)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
			{Name: "latency", Query: "vector(900)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}, DryRun: true},
		}
	})
	f.waitPhase("dry", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("dry", "2.0")
	c := f.waitPhase("dry", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("dry-primary")()).To(Equal("example.com/app:2.0"))
	latency := lastCheck(c, "latency")
	f.g.Expect(latency).NotTo(BeNil(), f.describe("dry"))
	f.g.Expect(latency.Outcome).To(Equal(sluicev1beta1.CheckFailed))
	f.g.Expect(latency.DryRun).To(BeTrue())
	f.g.Expect(*latency.Value).To(Equal("900"))
	f.g.Expect(lastCheck(c, "success").Outcome).To(Equal(sluicev1beta1.CheckPassed))
	var messages []string
	for _, s := range c.Status.History {
		messages = append(messages, s.Message)
	}
	f.g.Expect(strings.Join(messages, "\n")).To(ContainSubstring("dry run: latency Failed would have failed the step (latency 900 is outside [-Inf, 500])"))
	f.g.Expect(f.alerts.list()).NotTo(ContainElement("dry/CheckFailed/warn"))
	// Every step is exported once: in the WeightIncreased event of the
	// shift that followed it, or in a StepCompleted event of its own.
	f.g.Eventually(func() int {
		n := 0
		for _, note := range f.eventNotes("dry") {
			if strings.HasPrefix(note, "StepCompleted: Step ") || strings.Contains(note, " | Step ") {
				n++
			}
		}
		return n
	}, 10*time.Second).Should(BeNumerically(">=", len(c.Status.History)))
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
