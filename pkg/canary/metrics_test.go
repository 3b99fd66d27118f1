package canary

import (
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// seriesOf reads the series of a collector in a namespace, keyed by their
// other labels ("k=v,k=v", sorted): counters and gauges by value,
// histograms by sample count (and, under the key +sum, the sum of a single
// histogram series).
func seriesOf(c prometheus.Collector, namespace string) map[string]float64 {
	ch := make(chan prometheus.Metric, 1024)
	go func() { c.Collect(ch); close(ch) }()
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		var keys []string
		inNamespace := false
		for _, l := range d.GetLabel() {
			if l.GetName() == "namespace" {
				inNamespace = l.GetValue() == namespace
				continue
			}
			keys = append(keys, l.GetName()+"="+l.GetValue())
		}
		if !inNamespace {
			continue
		}
		sort.Strings(keys)
		key := strings.Join(keys, ",")
		switch {
		case d.Histogram != nil:
			out[key] = float64(d.GetHistogram().GetSampleCount())
			out[key+"+sum"] = d.GetHistogram().GetSampleSum()
		case d.Counter != nil:
			out[key] = d.GetCounter().GetValue()
		default:
			out[key] = d.GetGauge().GetValue()
		}
	}
	return out
}

// allSeries counts the series of every Canary collector in a namespace.
func allSeries(namespace string) int {
	n := 0
	for _, c := range []prometheus.Collector{canaryPhase, canaryWeight, canaryFailedChecks, canaryThreshold,
		metricValue, metricOutcome, metricThreshold, analysisDuration, releases,
		flaggerTotal, flaggerStatus, flaggerWeight, flaggerMetric, flaggerSuccesses, flaggerFailures} {
		n += len(seriesOf(c, namespace))
	}
	return n
}

func metricCheck(name string, outcome sluicev1beta1.CheckOutcome, value string) sluicev1beta1.CheckResult {
	ch := sluicev1beta1.CheckResult{Name: name, Kind: "metric", Outcome: outcome}
	if value != "" {
		ch.Value = ptr.To(value)
	}
	return ch
}

func measuredCanary(namespace string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{Kind: "Deployment", Name: "podinfo"},
			Analysis: &sluicev1beta1.CanaryAnalysis{Threshold: 3, Metrics: []sluicev1beta1.CanaryMetric{
				{Name: sluicev1beta1.MetricRequestSuccessRate, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
				{Name: "latency", Threshold: 500},
				{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "errors"}},
			}},
		},
		Status: sluicev1beta1.CanaryStatus{
			Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 30, FailedChecks: 1,
			History: []sluicev1beta1.CanaryStep{
				{Checks: []sluicev1beta1.CheckResult{metricCheck(sluicev1beta1.MetricRequestSuccessRate, sluicev1beta1.CheckFailed, "98")}},
				{Checks: []sluicev1beta1.CheckResult{
					{Name: "load", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed},
					metricCheck(sluicev1beta1.MetricRequestSuccessRate, sluicev1beta1.CheckPassed, "99.5"),
					metricCheck("latency", sluicev1beta1.CheckError, ""),
				}},
				{Checks: []sluicev1beta1.CheckResult{{Name: "load", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed}}},
			},
		},
	}
}

// Given a progressing Canary, the gauges say what its spec and status say:
// one phase at 1, the weights, the failed checks against the threshold, the
// last measured value and outcome of each metric and their ranges.
func TestRecordCanaryMetrics_Gauges(t *testing.T) {
	g := NewWithT(t)
	ns := "metrics-gauges"
	c := measuredCanary(ns)
	t.Cleanup(func() { forgetCanaryMetrics(ns, c.Name) })
	recordCanaryMetrics(c)

	phases := seriesOf(canaryPhase, ns)
	g.Expect(phases).To(HaveLen(len(allPhases)))
	g.Expect(phases).To(HaveKeyWithValue("name=podinfo,phase=Progressing", 1.0))
	g.Expect(phases).To(HaveKeyWithValue("name=podinfo,phase=Succeeded", 0.0))
	sum := 0.0
	for _, v := range phases {
		sum += v
	}
	g.Expect(sum).To(Equal(1.0))
	g.Expect(seriesOf(canaryWeight, ns)).To(Equal(map[string]float64{"name=podinfo": 30}))
	g.Expect(seriesOf(canaryFailedChecks, ns)).To(Equal(map[string]float64{"name=podinfo": 1}))
	g.Expect(seriesOf(canaryThreshold, ns)).To(Equal(map[string]float64{"name=podinfo": 3}))
	g.Expect(seriesOf(metricValue, ns)).To(Equal(map[string]float64{"metric=request-success-rate,name=podinfo": 99.5}))
	g.Expect(seriesOf(flaggerMetric, ns)).To(Equal(map[string]float64{"metric=request-success-rate,name=podinfo": 99.5}))
	outcomes := seriesOf(metricOutcome, ns)
	g.Expect(outcomes).To(HaveLen(2 * len(allOutcomes))) // errors has never been measured
	g.Expect(outcomes).To(HaveKeyWithValue("metric=request-success-rate,name=podinfo,outcome=Passed", 1.0))
	g.Expect(outcomes).To(HaveKeyWithValue("metric=request-success-rate,name=podinfo,outcome=Failed", 0.0))
	g.Expect(outcomes).To(HaveKeyWithValue("metric=latency,name=podinfo,outcome=Error", 1.0))
	g.Expect(outcomes).To(HaveKeyWithValue("metric=latency,name=podinfo,outcome=Passed", 0.0))
	g.Expect(seriesOf(metricThreshold, ns)).To(Equal(map[string]float64{
		"bound=min,metric=request-success-rate,name=podinfo": 99,
		"bound=max,metric=latency,name=podinfo":              500,
	}))
	g.Expect(seriesOf(flaggerStatus, ns)).To(Equal(map[string]float64{"name=podinfo": 0}))
	g.Expect(seriesOf(flaggerWeight, ns)).To(Equal(map[string]float64{"workload=podinfo": 30, "workload=podinfo-primary": 70}))
	g.Expect(seriesOf(flaggerTotal, ns)).To(Equal(map[string]float64{"": 1}))

	// A second Canary in the namespace counts once, however often recorded.
	other := measuredCanary(ns)
	other.Name, other.Spec.TargetRef.Name = "other", "other"
	t.Cleanup(func() { forgetCanaryMetrics(ns, other.Name) })
	recordCanaryMetrics(other)
	recordCanaryMetrics(other)
	recordCanaryMetrics(c)
	g.Expect(seriesOf(flaggerTotal, ns)).To(Equal(map[string]float64{"": 2}))

	// Failed, with latency removed from the spec and a new target: the
	// series that no longer apply are gone.
	c.Status.Phase = sluicev1beta1.CanaryPhaseFailed
	c.Status.CanaryWeight = 0
	c.Spec.Analysis.Metrics = c.Spec.Analysis.Metrics[:1]
	c.Status.History = c.Status.History[:1]
	c.Spec.TargetRef.Name = "podinfo-v2"
	recordCanaryMetrics(c)
	g.Expect(seriesOf(canaryPhase, ns)).To(HaveKeyWithValue("name=podinfo,phase=Failed", 1.0))
	g.Expect(seriesOf(canaryPhase, ns)).To(HaveKeyWithValue("name=podinfo,phase=Progressing", 0.0))
	g.Expect(seriesOf(flaggerStatus, ns)).To(HaveKeyWithValue("name=podinfo", 2.0))
	g.Expect(seriesOf(metricValue, ns)).To(Equal(map[string]float64{
		"metric=request-success-rate,name=other": 99.5, "metric=request-success-rate,name=podinfo": 98,
	}))
	g.Expect(seriesOf(metricOutcome, ns)).NotTo(HaveKey(ContainSubstring("metric=latency,name=podinfo")))
	g.Expect(seriesOf(metricThreshold, ns)).NotTo(HaveKey("bound=max,metric=latency,name=podinfo"))
	g.Expect(seriesOf(flaggerWeight, ns)).To(Equal(map[string]float64{
		"workload=podinfo-v2": 0, "workload=podinfo-v2-primary": 100, "workload=other": 30, "workload=other-primary": 70,
	}))

	// Forgetting one Canary leaves the other's series; forgetting both leaves none.
	forgetCanaryMetrics(ns, c.Name)
	g.Expect(seriesOf(flaggerTotal, ns)).To(Equal(map[string]float64{"": 1}))
	g.Expect(seriesOf(canaryWeight, ns)).To(Equal(map[string]float64{"name=other": 30}))
	forgetCanaryMetrics(ns, other.Name)
	g.Expect(allSeries(ns)).To(BeZero())
}

func releaseCanary(ns string, analysis *sluicev1beta1.CanaryAnalysis, skip bool, phase sluicev1beta1.CanaryPhase, at time.Time) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec:       sluicev1beta1.CanarySpec{Analysis: analysis, SkipAnalysis: skip},
		Status:     sluicev1beta1.CanaryStatus{Phase: phase, LastTransitionTime: &metav1.Time{Time: at}},
	}
}

// analysing is a status in phase p whose release started at start.
func analysing(p sluicev1beta1.CanaryPhase, start time.Time) *sluicev1beta1.CanaryStatus {
	return &sluicev1beta1.CanaryStatus{Phase: p, Conditions: []metav1.Condition{{
		Type: sluicev1beta1.ProgressingCondition, Status: metav1.ConditionTrue, LastTransitionTime: metav1.Time{Time: start},
	}}}
}

// A release is counted, by strategy and result, and timed from the start of
// its release to its terminal phase, in the reconcile that writes that
// phase and in no other.
func TestRecordRelease(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	end := start.Add(90 * time.Second)
	blueGreen := &sluicev1beta1.CanaryAnalysis{Iterations: 3}
	mirror := &sluicev1beta1.CanaryAnalysis{Iterations: 3, Mirror: true}
	ab := &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{{}}}
	for _, tt := range []struct {
		name         string
		prev         *sluicev1beta1.CanaryStatus
		canary       func(ns string) *sluicev1beta1.Canary
		provider     string
		want         map[string]float64 // sluice_canary_releases_total
		wantDuration map[string]float64
		wantFlagger  map[string]float64 // successes and failures, prefixed
	}{{
		name: "canary promoted",
		prev: analysing(sluicev1beta1.CanaryPhaseFinalising, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, nil, false, sluicev1beta1.CanaryPhaseSucceeded, end)
		},
		provider:     sluicev1beta1.ProviderIstio,
		want:         map[string]float64{"name=podinfo,result=succeeded,strategy=canary": 1},
		wantDuration: map[string]float64{"name=podinfo,result=succeeded,strategy=canary": 1, "name=podinfo,result=succeeded,strategy=canary+sum": 90},
		wantFlagger:  map[string]float64{"successes:analysis_status=completed,deployment_strategy=canary,name=podinfo": 1},
	}, {
		name: "blue/green with mirroring rolled back",
		prev: analysing(sluicev1beta1.CanaryPhaseProgressing, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, mirror, false, sluicev1beta1.CanaryPhaseFailed, end)
		},
		provider:     sluicev1beta1.ProviderIstio,
		want:         map[string]float64{"name=podinfo,result=failed,strategy=blue-green-mirror": 1},
		wantDuration: map[string]float64{"name=podinfo,result=failed,strategy=blue-green-mirror": 1, "name=podinfo,result=failed,strategy=blue-green-mirror+sum": 90},
		wantFlagger:  map[string]float64{"failures:analysis_status=completed,deployment_strategy=blue-green,name=podinfo": 1},
	}, {
		name: "A/B testing waiting for promotion, aborted",
		prev: analysing(sluicev1beta1.CanaryPhaseWaitingPromotion, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, ab, false, sluicev1beta1.CanaryPhaseFailed, end)
		},
		provider:     sluicev1beta1.ProviderIstio,
		want:         map[string]float64{"name=podinfo,result=failed,strategy=ab-testing": 1},
		wantDuration: map[string]float64{"name=podinfo,result=failed,strategy=ab-testing": 1, "name=podinfo,result=failed,strategy=ab-testing+sum": 90},
		wantFlagger:  map[string]float64{"failures:analysis_status=completed,deployment_strategy=ab-testing,name=podinfo": 1},
	}, {
		name: "kubernetes provider, analysis skipped",
		prev: analysing(sluicev1beta1.CanaryPhasePromoting, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, blueGreen, true, sluicev1beta1.CanaryPhaseSucceeded, end)
		},
		provider:     sluicev1beta1.ProviderKubernetes,
		want:         map[string]float64{"name=podinfo,result=succeeded,strategy=blue-green": 1},
		wantDuration: map[string]float64{"name=podinfo,result=succeeded,strategy=blue-green": 1, "name=podinfo,result=succeeded,strategy=blue-green+sum": 90},
		wantFlagger:  map[string]float64{"successes:analysis_status=skipped,deployment_strategy=blue-green,name=podinfo": 1},
	}, {
		name: "already succeeded: not counted again",
		prev: &sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded},
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, nil, false, sluicev1beta1.CanaryPhaseSucceeded, end)
		},
		provider: sluicev1beta1.ProviderIstio,
	}, {
		name: "a waiting revision withdrawn: no analysis ran",
		prev: analysing(sluicev1beta1.CanaryPhaseWaiting, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, nil, false, sluicev1beta1.CanaryPhaseSucceeded, end)
		},
		provider: sluicev1beta1.ProviderIstio,
	}, {
		name: "still progressing",
		prev: analysing(sluicev1beta1.CanaryPhaseProgressing, start),
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, nil, false, sluicev1beta1.CanaryPhaseProgressing, end)
		},
		provider: sluicev1beta1.ProviderIstio,
	}, {
		name: "no start time in status: counted, not timed",
		prev: &sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing},
		canary: func(ns string) *sluicev1beta1.Canary {
			return releaseCanary(ns, nil, false, sluicev1beta1.CanaryPhaseFailed, end)
		},
		provider:     sluicev1beta1.ProviderIstio,
		want:         map[string]float64{"name=podinfo,result=failed,strategy=canary": 1},
		wantDuration: map[string]float64{},
		wantFlagger:  map[string]float64{"failures:analysis_status=completed,deployment_strategy=canary,name=podinfo": 1},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := "metrics-release-" + strings.ReplaceAll(strings.ReplaceAll(tt.name, " ", "-"), "/", "")
			c := tt.canary(ns)
			t.Cleanup(func() { forgetCanaryMetrics(ns, c.Name) })
			recordRelease(tt.prev, c, tt.provider)
			// The next reconcile starts from the status just written.
			recordRelease(c.Status.DeepCopy(), c, tt.provider)

			flagger := map[string]float64{}
			for k, v := range seriesOf(flaggerSuccesses, ns) {
				flagger["successes:"+k] = v
			}
			for k, v := range seriesOf(flaggerFailures, ns) {
				flagger["failures:"+k] = v
			}
			if tt.want == nil {
				g.Expect(seriesOf(releases, ns)).To(BeEmpty())
				g.Expect(seriesOf(analysisDuration, ns)).To(BeEmpty())
				g.Expect(flagger).To(BeEmpty())
				return
			}
			g.Expect(seriesOf(releases, ns)).To(Equal(tt.want))
			g.Expect(seriesOf(analysisDuration, ns)).To(Equal(tt.wantDuration))
			g.Expect(flagger).To(Equal(tt.wantFlagger))
		})
	}
}
