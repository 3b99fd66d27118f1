package canary

import (
	"context"
	"sync"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// DefaultMetricConcurrency is how many metric queries of one step run at once
// when the reconciler does not say.
const DefaultMetricConcurrency = 8

// checkMetrics runs the metrics of a step with the reconciler's checker and bound.
func (r *CanaryReconciler) checkMetrics(ctx context.Context, s *scope, delayed map[string]string) []sluicev1beta1.CheckResult {
	return CheckMetrics(ctx, r.Metrics, s.canary, s.provider, r.MetricConcurrency, delayed)
}

// CheckMetrics runs the metrics of a Canary's analysis step concurrently, at
// most limit at once (DefaultMetricConcurrency when limit is 0 or less), so
// that a step costs about its slowest query rather than the sum of them. The
// results keep the spec's order. Metrics named in delayed (still within their
// initialDelay) are not queried: they are Skipped with the given message.
// It is exported for bench/analysis, which measures a step's analysis time.
func CheckMetrics(ctx context.Context, checker MetricChecker, c *sluicev1beta1.Canary, provider string, limit int, delayed map[string]string) []sluicev1beta1.CheckResult {
	if c.Spec.Analysis == nil {
		return nil
	}
	ms := c.Spec.Analysis.Metrics
	out := make([]sluicev1beta1.CheckResult, len(ms))
	if limit <= 0 {
		limit = DefaultMetricConcurrency
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, m := range ms {
		if msg, ok := delayed[m.Name]; ok {
			out[i] = sluicev1beta1.CheckResult{Name: m.Name, Kind: "metric", Outcome: sluicev1beta1.CheckSkipped,
				Reason: reasonInitialDelay, Message: truncate(msg, 1024), DryRun: m.DryRun}
			continue
		}
		// A compared metric runs two queries at once: it takes two slots
		// (never more than the bound, or it would wait forever).
		slots := min(metrics.QueriesOf(m), limit)
		wg.Add(1)
		for range slots {
			sem <- struct{}{}
		}
		go func() {
			defer wg.Done()
			defer func() {
				for range slots {
					<-sem
				}
			}()
			out[i] = checker.Check(ctx, c, provider, m)
		}()
	}
	wg.Wait()
	return out
}
