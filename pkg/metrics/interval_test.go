package metrics_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// TestIntervalFrom: a provider reads the metric's interval from the
// context, and the metrics' default without one.
func TestIntervalFrom(t *testing.T) {
	g := NewWithT(t)
	g.Expect(metrics.IntervalFrom(context.Background())).To(Equal(sluicev1beta1.DefaultMetricInterval))
	g.Expect(metrics.IntervalFrom(metrics.WithInterval(context.Background(), 30*time.Second))).To(Equal(30 * time.Second))
	g.Expect(metrics.IntervalFrom(metrics.WithInterval(context.Background(), 0))).To(Equal(sluicev1beta1.DefaultMetricInterval))
}
