package canary

import (
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// histogramsOf collects the histogram series of a collector, keyed by their labels.
func histogramsOf(c prometheus.Collector) map[string]*dto.Histogram {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	out := map[string]*dto.Histogram{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		var key string
		for _, l := range d.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + ","
		}
		out[key] = d.GetHistogram()
	}
	return out
}

// bucketsOf is a histogram's cumulative counts by upper bound.
func bucketsOf(h *dto.Histogram) map[float64]uint64 {
	out := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		out[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return out
}

// TestHistFamily_CountsAsClientGolang: a compact histogram exposes the same
// buckets, count and sum as client_golang's histogram given the same
// observations, bounds included (a bucket counts values up to and
// including its upper bound), and above the last bound only in the count.
func TestHistFamily_CountsAsClientGolang(t *testing.T) {
	g := NewWithT(t)
	buckets := []float64{1, 5, 10}
	h := newHistFamily("test_compact_seconds", "help", buckets)
	ref := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_ref_seconds", Help: "help", Buckets: buckets},
		[]string{"name", "namespace"})
	for _, v := range []float64{0, 1, 1.5, 5, 7, 10, 10.01, 300} {
		h.observe("a", "ns", v)
		ref.WithLabelValues("a", "ns").Observe(v)
	}
	got, want := histogramsOf(h)["name=a,namespace=ns,"], histogramsOf(ref)["name=a,namespace=ns,"]
	g.Expect(got).NotTo(BeNil())
	g.Expect(got.GetSampleCount()).To(Equal(want.GetSampleCount()))
	g.Expect(got.GetSampleSum()).To(BeNumerically("~", want.GetSampleSum(), 1e-9))
	g.Expect(bucketsOf(got)).To(Equal(bucketsOf(want)))
	g.Expect(bucketsOf(got)).To(Equal(map[float64]uint64{1: 2, 5: 4, 10: 6}))
}

// TestHistFamily_ZeroSeriesAndDeletion: a touched series exists at zero
// with every bucket, observing makes it count, and DeletePartialMatch
// removes by name and namespace, or by namespace alone.
func TestHistFamily_ZeroSeriesAndDeletion(t *testing.T) {
	g := NewWithT(t)
	h := newHistFamily("test_zero_seconds", "help", []float64{1, 2})
	h.touch("a", "ns1")
	h.touch("b", "ns1")
	h.touch("a", "ns2")
	zero := histogramsOf(h)["name=a,namespace=ns1,"]
	g.Expect(zero).NotTo(BeNil())
	g.Expect(zero.GetSampleCount()).To(BeZero())
	g.Expect(bucketsOf(zero)).To(Equal(map[float64]uint64{1: 0, 2: 0}))

	h.observe("a", "ns1", 1.5)
	h.touch("a", "ns1") // touching again keeps the counts
	g.Expect(histogramsOf(h)["name=a,namespace=ns1,"].GetSampleCount()).To(Equal(uint64(1)))

	g.Expect(h.DeletePartialMatch(prometheus.Labels{"name": "a", "namespace": "ns1"})).To(Equal(1))
	g.Expect(histogramsOf(h)).To(HaveLen(2))
	g.Expect(h.DeletePartialMatch(prometheus.Labels{"namespace": "ns1"})).To(Equal(1))
	g.Expect(histogramsOf(h)).To(HaveKey("name=a,namespace=ns2,"))
	g.Expect(histogramsOf(h)).To(HaveLen(1))
}

// TestGaugeFamilies_ReplacedWhole: a Canary's gauges are one record; a new
// status replaces it whole, so a metric that left the spec and the last
// step has no series left, in any family.
func TestGaugeFamilies_ReplacedWhole(t *testing.T) {
	g := NewWithT(t)
	ns := "gauges-replaced"
	c := measuredCanary(ns)
	recordCanaryMetrics(c)
	g.Expect(seriesOf(metricThreshold, ns)).To(HaveKey("bound=max,metric=latency,name=podinfo"))

	c.Spec.Analysis.Metrics = c.Spec.Analysis.Metrics[:1]
	c.Status.History = nil
	recordCanaryMetrics(c)
	g.Expect(seriesOf(metricThreshold, ns)).To(Equal(map[string]float64{"bound=min,metric=request-success-rate,name=podinfo": 99}))
	g.Expect(seriesOf(metricOutcome, ns)).To(BeEmpty())
	g.Expect(seriesOf(metricValue, ns)).To(BeEmpty())
	forgetCanaryMetrics(ns, "podinfo")
	g.Expect(allSeries(ns)).To(BeZero())
}

// BenchmarkCanarySeries_HeapPerCanary reports the live heap that the
// metrics of one Canary hold after a release's worth of reconciles (the
// gauges, the per-step and delivery histograms): the per-Canary part of
// the manager's memory that docs/scale.md "Memory" accounts for.
func BenchmarkCanarySeries_HeapPerCanary(b *testing.B) {
	const n = 1000
	for range b.N {
		start := time.Now()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var names []string
		for i := range n {
			c := measuredCanary("bench-series")
			c.Name = fmt.Sprintf("app-%04d", i)
			c.Spec.TargetRef.Name = c.Name
			prev := c.Status.DeepCopy()
			recordMetrics(prev, c, "kubernetes")
			observeDelivery(prev, c)
			observeAnalysisStep(c, sluicev1beta1.CanaryPhaseProgressing, time.Since(start))
			names = append(names, c.Name)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/canary")
		sort.Strings(names)
		for _, name := range names {
			forgetCanaryMetrics("bench-series", name)
		}
	}
}

// TestFlaggerWeight_TwoCanariesOfOneTarget: flagger_canary_weight is keyed
// by the target, not the Canary, so two Canaries of one target give the same
// series. A scrape must still succeed (a duplicate series fails the whole
// scrape) and show the weight set last, as a vector's last Set did.
func TestFlaggerWeight_TwoCanariesOfOneTarget(t *testing.T) {
	g := NewWithT(t)
	ns := "flagger-weight-shared"
	a, b := measuredCanary(ns), measuredCanary(ns)
	b.Name = "second"
	b.Status.CanaryWeight = 60
	recordCanaryMetrics(a)
	recordCanaryMetrics(b)
	g.Expect(seriesOf(flaggerWeight, ns)).To(Equal(map[string]float64{"workload=podinfo": 60, "workload=podinfo-primary": 40}))
	a.Status.CanaryWeight = 10
	recordCanaryMetrics(a)
	g.Expect(seriesOf(flaggerWeight, ns)).To(Equal(map[string]float64{"workload=podinfo": 10, "workload=podinfo-primary": 90}))
	_, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	forgetCanaryMetrics(ns, a.Name)
	forgetCanaryMetrics(ns, b.Name)
	g.Expect(seriesOf(flaggerWeight, ns)).To(BeEmpty())
}
