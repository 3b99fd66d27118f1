package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// family scrapes the manager's metrics registry for one family.
func family(t *testing.T, name string) *dto.MetricFamily {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestSetInfo: flagger_info has one series of value 1 with Flagger's
// labels; setting it again replaces it.
func TestSetInfo(t *testing.T) {
	g := NewWithT(t)
	SetInfo("v0.1.0", "istio")
	SetInfo("v0.2.0", "gatewayapi:v1")
	f := family(t, "flagger_info")
	g.Expect(f).NotTo(BeNil())
	g.Expect(f.GetType()).To(Equal(dto.MetricType_GAUGE))
	g.Expect(f.GetMetric()).To(HaveLen(1))
	g.Expect(labelsOf(f.GetMetric()[0])).To(Equal(map[string]string{"version": "v0.2.0", "mesh_provider": "gatewayapi:v1"}))
	g.Expect(f.GetMetric()[0].GetGauge().GetValue()).To(Equal(1.0))
}

// TestObserveAnalysisStep: flagger_canary_duration_seconds is a histogram
// with Flagger's labels and default buckets, observed for reconciles in
// analysis only, and deleted with the Canary's other series.
func TestObserveAnalysisStep(t *testing.T) {
	g := NewWithT(t)
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "timed", Namespace: "flagger-duration-test"}}
	observeAnalysisStep(c, sluicev1beta1.CanaryPhaseProgressing, 300*time.Millisecond)
	observeAnalysisStep(c, sluicev1beta1.CanaryPhaseWaitingPromotion, 100*time.Millisecond)
	observeAnalysisStep(c, sluicev1beta1.CanaryPhaseInitialized, time.Second) // not an analysis step
	observeAnalysisStep(c, sluicev1beta1.CanaryPhaseSucceeded, time.Second)

	series := func() []*dto.Metric {
		var out []*dto.Metric
		if f := family(t, "flagger_canary_duration_seconds"); f != nil {
			g.Expect(f.GetType()).To(Equal(dto.MetricType_HISTOGRAM))
			for _, m := range f.GetMetric() {
				if labelsOf(m)["namespace"] == c.Namespace {
					out = append(out, m)
				}
			}
		}
		return out
	}
	got := series()
	g.Expect(got).To(HaveLen(1))
	g.Expect(labelsOf(got[0])).To(Equal(map[string]string{"name": "timed", "namespace": c.Namespace}))
	h := got[0].GetHistogram()
	g.Expect(h.GetSampleCount()).To(Equal(uint64(2)))
	g.Expect(h.GetSampleSum()).To(BeNumerically("~", 0.4, 1e-9))
	g.Expect(h.GetBucket()).To(HaveLen(11), "Prometheus' default buckets, as Flagger")

	forgetCanaryMetrics(c.Namespace, c.Name)
	g.Expect(series()).To(BeEmpty())
}
