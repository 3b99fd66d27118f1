package canary

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestCheckMetrics_ComparedTakeTwoSlots: a compared metric runs two queries
// at once, so it takes two of the bound's slots: with a bound of 4, two
// compared metrics (4 queries) are in flight, not four metrics (6 queries);
// with a bound of 1 a compared metric still runs (it takes the one slot).
func TestCheckMetrics_ComparedTakeTwoSlots(t *testing.T) {
	compared := func(c *sluicev1beta1.Canary, names ...string) *sluicev1beta1.Canary {
		for i := range c.Spec.Analysis.Metrics {
			for _, n := range names {
				if c.Spec.Analysis.Metrics[i].Name == n {
					c.Spec.Analysis.Metrics[i].Compare = &sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}
				}
			}
		}
		return c
	}
	for _, tt := range []struct {
		name  string
		bound int
		c     *sluicev1beta1.Canary
		want  int
	}{
		{"bound 4: two compared metrics", 4, compared(atMetrics("a", "b", "c", "d"), "a", "b"), 2},
		{"bound 3: one compared and one plain metric", 3, compared(atMetrics("a", "b", "c"), "a"), 2},
		{"bound 1: a compared metric takes the only slot", 1, compared(atMetrics("a", "b"), "a", "b"), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			b := &blockingChecker{release: make(chan struct{})}
			r := &CanaryReconciler{Metrics: b, MetricConcurrency: tt.bound}
			s := &scope{canary: tt.c, provider: "istio"}
			done := make(chan []sluicev1beta1.CheckResult)
			go func() { done <- r.checkMetrics(context.Background(), s, nil) }()
			g.Eventually(func() int { n, _ := b.counts(); return n }, 5*time.Second, time.Millisecond).Should(Equal(tt.want))
			g.Consistently(func() int { _, m := b.counts(); return m }, 100*time.Millisecond, time.Millisecond).Should(Equal(tt.want))
			close(b.release)
			var res []sluicev1beta1.CheckResult
			g.Eventually(done, 5*time.Second).Should(Receive(&res))
			g.Expect(res).To(HaveLen(len(tt.c.Spec.Analysis.Metrics)))
		})
	}
}
