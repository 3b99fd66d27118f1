package metrics_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// TestCheck_InconclusiveRange measures the Istio success rate (99 % on the
// real Prometheus) against ranges: inside thresholdRange it passes (even when
// the inconclusive range overlaps), outside thresholdRange but inside
// inconclusiveRange it is Inconclusive with the value and both ranges in the
// message, outside both it fails.
func TestCheck_InconclusiveRange(t *testing.T) {
	tests := []struct {
		name         string
		pass, incl   sluicev1beta1.CanaryThresholdRange
		want         sluicev1beta1.CheckOutcome
		wantInMessge string
	}{
		{"inside the threshold range", sluicev1beta1.CanaryThresholdRange{Min: ptr.To(98.0)}, sluicev1beta1.CanaryThresholdRange{Min: ptr.To(90.0), Max: ptr.To(99.5)},
			sluicev1beta1.CheckPassed, "request-success-rate 99 is within [98, +Inf]"},
		{"inside the inconclusive range only", sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.5)}, sluicev1beta1.CanaryThresholdRange{Min: ptr.To(95.0), Max: ptr.To(99.5)},
			sluicev1beta1.CheckInconclusive, "request-success-rate 99 is inconclusive: outside [99.5, +Inf] but within inconclusiveRange [95, 99.5]"},
		{"outside both", sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.5)}, sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.2)},
			sluicev1beta1.CheckFailed, "request-success-rate 99 is outside [99.5, +Inf] and inconclusiveRange [99.2, +Inf]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			m := metric("request-success-rate", tt.pass.Min, tt.pass.Max)
			m.InconclusiveRange = &sluicev1beta1.CanaryInconclusiveRange{Min: tt.incl.Min, Max: tt.incl.Max}
			k := checker()
			res := eventually(g, func() sluicev1beta1.CheckResult { return k.Check(context.Background(), canary("istio"), "istio", m) })
			g.Expect(res.Outcome).To(Equal(tt.want), "%+v", res)
			g.Expect(res.Value).To(Equal(ptr.To("99")))
			g.Expect(res.Message).To(Equal(tt.wantInMessge))
			g.Expect(res.DryRun).To(BeFalse())
		})
	}
}

// TestCheck_DryRun: a dry-run metric is measured and its outcome recorded
// as it is, marked dryRun; an error with onError: Hold does not hold.
func TestCheck_DryRun(t *testing.T) {
	g := NewWithT(t)
	k := checker()
	m := metric("request-success-rate", ptr.To(99.9), nil)
	m.DryRun = true
	res := eventually(g, func() sluicev1beta1.CheckResult { return k.Check(context.Background(), canary("istio"), "istio", m) })
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckFailed), "%+v", res)
	g.Expect(res.DryRun).To(BeTrue())
	g.Expect(*res.Value).To(Equal("99"))

	down := &recordingProvider{err: errors.New("connection refused")}
	k = &metrics.Checker{Client: env.Client, SecretReader: env.Client, Providers: metrics.Providers{"prometheus": down.factory}}
	m = sluicev1beta1.CanaryMetric{Name: "errors", Query: "vector(1)", OnError: sluicev1beta1.PolicyHold, DryRun: true}
	res = k.Check(context.Background(), canary("istio"), "istio", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Held).To(BeFalse(), "a dry run never holds a step")
	g.Expect(res.DryRun).To(BeTrue())
}
