package canary

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// blockingChecker answers each check only once released, and counts the
// checks in flight.
type blockingChecker struct {
	mu       sync.Mutex
	inFlight int
	maxSeen  int
	release  chan struct{}
}

func (b *blockingChecker) Check(ctx context.Context, _ *sluicev1beta1.Canary, _ string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult {
	b.mu.Lock()
	b.inFlight++
	b.maxSeen = max(b.maxSeen, b.inFlight)
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	return sluicev1beta1.CheckResult{Name: m.Name, Kind: "metric", Outcome: sluicev1beta1.CheckPassed}
}

func (b *blockingChecker) counts() (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inFlight, b.maxSeen
}

func atMetrics(names ...string) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &sluicev1beta1.CanaryAnalysis{}}}
	for _, n := range names {
		c.Spec.Analysis.Metrics = append(c.Spec.Analysis.Metrics, sluicev1beta1.CanaryMetric{Name: n, Query: "vector(1)"})
	}
	return c
}

// TestCheckMetrics_ConcurrentAndBounded: the metrics of a step are queried
// at once up to the bound, never beyond it, and the results keep the spec's
// order; a delayed metric is not queried but Skipped.
func TestCheckMetrics_ConcurrentAndBounded(t *testing.T) {
	for _, tt := range []struct {
		name  string
		bound int
		want  int
	}{{"bound 2", 2, 2}, {"default bound (8) above the metrics", 0, 5}, {"bound 1 is sequential", 1, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := &blockingChecker{release: make(chan struct{})}
			r := &CanaryReconciler{Metrics: b, MetricConcurrency: tt.bound}
			s := &scope{canary: atMetrics("a", "b", "c", "d", "e", "f"), provider: "istio"}
			done := make(chan []sluicev1beta1.CheckResult)
			go func() { done <- r.checkMetrics(context.Background(), s, map[string]string{"c": "initialDelay"}) }()
			g.Eventually(func() int { n, _ := b.counts(); return n }, 5*time.Second, time.Millisecond).Should(Equal(tt.want))
			g.Consistently(func() int { _, m := b.counts(); return m }, 100*time.Millisecond, time.Millisecond).Should(Equal(tt.want))
			close(b.release)
			var res []sluicev1beta1.CheckResult
			g.Eventually(done, 5*time.Second).Should(Receive(&res))
			var names []string
			for _, c := range res {
				names = append(names, c.Name)
			}
			g.Expect(names).To(Equal([]string{"a", "b", "c", "d", "e", "f"}), "the spec's order")
			g.Expect(res[2].Outcome).To(Equal(sluicev1beta1.CheckSkipped))
			g.Expect(res[2].Reason).To(Equal(reasonInitialDelay))
			g.Expect(res[2].Message).To(Equal("initialDelay"))
			_, maxSeen := b.counts()
			g.Expect(maxSeen).To(Equal(tt.want), "never more than the bound in flight")
		})
	}
}

// TestStepExport: the steps a status write added are exported once each, as
// StepCompleted events naming every check's outcome, value and range.
func TestStepExport(t *testing.T) {
	g := NewWithT(t)
	at := func(m int) metav1.Time { return metav1.NewTime(dtNow.Add(time.Duration(m) * time.Minute)) }
	v := "99"
	step := func(m int) sluicev1beta1.CanaryStep {
		return sluicev1beta1.CanaryStep{Time: at(m), Phase: dtPhProgressing, Weight: int32(10 * m), Message: "Canary weight"}
	}
	prev := sluicev1beta1.CanaryStatus{History: []sluicev1beta1.CanaryStep{step(1), step(2)}}
	now := sluicev1beta1.CanaryStatus{History: []sluicev1beta1.CanaryStep{step(2), step(3)}}
	g.Expect(newSteps(&prev, &now)).To(Equal([]sluicev1beta1.CanaryStep{step(3)}), "step 1 rotated out, step 2 exported before")
	g.Expect(newSteps(&now, &now)).To(BeEmpty(), "an unchanged history exports nothing")
	g.Expect(newSteps(&sluicev1beta1.CanaryStatus{}, &now)).To(HaveLen(2))

	s := step(3)
	s.Checks = []sluicev1beta1.CheckResult{
		{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckPassed, Value: &v, Message: "request-success-rate 99 is within [99, +Inf]"},
		{Name: "latency", Kind: "metric", Outcome: sluicev1beta1.CheckFailed, DryRun: true, Value: &v},
		{Name: "load-test", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed},
	}
	e := stepEvent(s)
	g.Expect(e.Reason).To(Equal("StepCompleted"))
	g.Expect(e.Warning).To(BeFalse())
	g.Expect(e.Message).To(Equal("Step 2025-03-14T12:03:00Z: phase Progressing, weight 30%, iteration 0: Canary weight" +
		" | metric request-success-rate Passed: request-success-rate 99 is within [99, +Inf]" +
		" | metric latency Failed (dry run) value=99 | webhook load-test Passed"))
}

// TestFoldSteps: a step followed by a traffic shift in the same commit is
// carried by that shift's event (one event write per weighted step); a step
// without one keeps its own StepCompleted event; what webhooks and alerts
// receive (Message) is unchanged.
func TestFoldSteps(t *testing.T) {
	g := NewWithT(t)
	at := func(m int) metav1.Time { return metav1.NewTime(dtNow.Add(time.Duration(m) * time.Minute)) }
	step := func(m int) sluicev1beta1.CanaryStep {
		return sluicev1beta1.CanaryStep{Time: at(m), Phase: dtPhProgressing, Weight: int32(10 * m), Message: "Canary weight"}
	}
	shift := Event{Reason: "WeightIncreased", Message: "Advance canary weight to 20%"}
	other := Event{Reason: "CheckFailed", Warning: true, Message: "metric failed"}

	events, left := foldSteps([]Event{other, shift}, []sluicev1beta1.CanaryStep{step(1)})
	g.Expect(left).To(BeEmpty(), "the step is carried by the WeightIncreased event")
	g.Expect(events).To(HaveLen(2))
	g.Expect(events[0]).To(Equal(other), "only a traffic shift carries a step")
	g.Expect(events[1].Message).To(Equal(shift.Message), "webhooks and alerts get the shift's own message")
	g.Expect(events[1].Detail).To(Equal(stepEvent(step(1)).Message))

	events, left = foldSteps([]Event{other}, []sluicev1beta1.CanaryStep{step(1)})
	g.Expect(left).To(Equal([]sluicev1beta1.CanaryStep{step(1)}), "a step without a shift gets its own StepCompleted event")
	g.Expect(events[0].Detail).To(BeEmpty())

	promo := Event{Reason: "PromotionStep", Message: "Primary weight 50%"}
	events, left = foldSteps([]Event{promo}, []sluicev1beta1.CanaryStep{step(1), step(2)})
	g.Expect(events[0].Detail).To(Equal(stepEvent(step(1)).Message), "the oldest new step is the one the shift ends")
	g.Expect(left).To(Equal([]sluicev1beta1.CanaryStep{step(2)}))

	in := []Event{shift}
	events, left = foldSteps(in, nil)
	g.Expect(left).To(BeEmpty())
	g.Expect(events[0].Detail).To(BeEmpty())
	_, _ = foldSteps(in, []sluicev1beta1.CanaryStep{step(1)})
	g.Expect(in[0].Detail).To(BeEmpty(), "the decision's events are not changed in place")
}
