package metrics

import (
	"context"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// intervalKey carries a check's metric interval to its provider.
type intervalKey struct{}

// WithInterval returns a context that tells a Provider the metric's interval.
// The Checker sets it on every query: SaaS APIs take an explicit time window
// (Datadog's from/to, New Relic's SINCE, Dynatrace's from/to) where PromQL
// writes the window in the query itself, and the Provider interface keeps
// one method.
func WithInterval(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, intervalKey{}, d)
}

// IntervalFrom is the metric interval set by WithInterval, or a metric's
// default interval when none (or a non-positive one) is set.
func IntervalFrom(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(intervalKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return sluicev1beta1.DefaultMetricInterval
}
