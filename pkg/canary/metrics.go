package canary

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// The Canary metrics, served on the manager's metrics endpoint. The gauges
// are derived from the status the reconciler has just written, so they say
// what the status says; the release counters and the duration histogram move
// once per release, in the reconcile that writes its terminal phase. Every
// series of a Canary is deleted when the Canary goes away. The flagger_*
// series repeat the same facts under Flagger's names and labels, so that
// Flagger dashboards and alerts keep working.
var (
	canaryPhase = newGaugeFamily("sluice_canary_phase",
		"Phase of a Canary's release: 1 for the current phase, 0 for the others.",
		[]string{"name", "namespace", "phase"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			for _, p := range allPhases {
				series(boolValue(g.phase == p), k.name, k.namespace, string(p))
			}
		})
	canaryWeight = newGaugeFamily("sluice_canary_weight",
		"Percentage of the traffic routed to the canary (status.canaryWeight).",
		[]string{"name", "namespace"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			series(g.weight, k.name, k.namespace)
		})
	canaryFailedChecks = newGaugeFamily("sluice_canary_failed_checks",
		"Failed checks of the current analysis (status.failedChecks); the release is rolled back at the threshold.",
		[]string{"name", "namespace"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			series(g.failedChecks, k.name, k.namespace)
		})
	canaryThreshold = newGaugeFamily("sluice_canary_failed_checks_threshold",
		"Number of failed checks that rolls a release back (spec.analysis.threshold).",
		[]string{"name", "namespace"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			series(g.threshold, k.name, k.namespace)
		})
	metricValue = newGaugeFamily("sluice_canary_metric_value",
		"Last value measured by an analysis metric of a Canary.",
		[]string{"name", "namespace", "metric"}, emitMetricValues)
	metricOutcome = newGaugeFamily("sluice_canary_metric_outcome",
		"Outcome of the last check of an analysis metric: 1 for the outcome (Passed, Failed, Error, NoData, Skipped), 0 for the others.",
		[]string{"name", "namespace", "metric", "outcome"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			for _, m := range g.metrics {
				if !m.measured {
					continue
				}
				for _, o := range allOutcomes {
					series(boolValue(m.outcome == o), k.name, k.namespace, m.name, string(o))
				}
			}
		})
	metricThreshold = newGaugeFamily("sluice_canary_metric_threshold",
		"Accepted range of an analysis metric: its bound min or max (thresholdRange, or the deprecated threshold). An open bound has no series.",
		[]string{"name", "namespace", "metric", "bound"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			for _, m := range g.metrics {
				if !math.IsNaN(m.min) {
					series(m.min, k.name, k.namespace, m.name, "min")
				}
				if !math.IsNaN(m.max) {
					series(m.max, k.name, k.namespace, m.name, "max")
				}
			}
		})
	analysisDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sluice_canary_analysis_duration_seconds",
		Help: "Duration of a revision's release, from the start of its release (the Progressing condition turning True) to Succeeded or Failed.",
		// Releases take from seconds (tests, skipAnalysis) to hours.
		Buckets: []float64{10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400},
	}, []string{"name", "namespace", "strategy", "result"})
	releases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_canary_releases_total",
		Help: "Releases that ended, by strategy (canary, ab-testing, blue-green, blue-green-mirror) and result (succeeded, failed).",
	}, []string{"name", "namespace", "strategy", "result"})

	flaggerTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagger_canary_total",
		Help: "Flagger-compatible: number of Canaries per namespace.",
	}, []string{"namespace"})
	flaggerStatus = newGaugeFamily("flagger_canary_status",
		"Flagger-compatible: 0 in phase Progressing, 2 in phase Failed, 1 otherwise.",
		[]string{"name", "namespace"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			series(g.fgrStatus, k.name, k.namespace)
		})
	flaggerWeight = newGaugeFamily("flagger_canary_weight",
		"Flagger-compatible: traffic weight of the target (canary) and of <target>-primary.",
		[]string{"workload", "namespace"},
		func(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
			series(g.weight, g.target, k.namespace)
			series(100-g.weight, g.target+"-primary", k.namespace)
		})
	flaggerMetric = newGaugeFamily("flagger_canary_metric_analysis",
		"Flagger-compatible: last value of an analysis metric.",
		[]string{"name", "namespace", "metric"}, emitMetricValues)
	flaggerSuccesses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagger_canary_successes_total",
		Help: "Flagger-compatible: releases promoted, by deployment_strategy and analysis_status (completed, skipped).",
	}, []string{"name", "namespace", "deployment_strategy", "analysis_status"})
	flaggerFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagger_canary_failures_total",
		Help: "Flagger-compatible: releases rolled back, by deployment_strategy and analysis_status (completed, skipped).",
	}, []string{"name", "namespace", "deployment_strategy", "analysis_status"})
)

// perCanary are the vectors and histograms whose series carry the Canary's
// name and namespace; the gauges are forgotten with deleteGauges.
var perCanary = []interface {
	DeletePartialMatch(prometheus.Labels) int
}{
	analysisDuration, releases, flaggerSuccesses, flaggerFailures,
}

// MetricNames lists the names of the Canary metrics (for dashboards and their tests).
var MetricNames = []string{
	"sluice_canary_phase", "sluice_canary_weight", "sluice_canary_failed_checks",
	"sluice_canary_failed_checks_threshold", "sluice_canary_metric_value", "sluice_canary_metric_outcome",
	"sluice_canary_metric_threshold", "sluice_canary_analysis_duration_seconds", "sluice_canary_releases_total",
	"flagger_canary_total", "flagger_canary_status", "flagger_canary_weight", "flagger_canary_metric_analysis",
	"flagger_canary_successes_total", "flagger_canary_failures_total",
}

func init() {
	// Two Canaries of one target (a mistake, but possible) share its series.
	flaggerWeight.shared = true
	ctrlmetrics.Registry.MustRegister(canaryPhase, canaryWeight, canaryFailedChecks, canaryThreshold,
		metricValue, metricOutcome, metricThreshold, analysisDuration, releases,
		flaggerTotal, flaggerStatus, flaggerWeight, flaggerMetric, flaggerSuccesses, flaggerFailures)
}

// allPhases are the phases the phase gauge has a series for.
var allPhases = []sluicev1beta1.CanaryPhase{
	sluicev1beta1.CanaryPhaseInitializing, sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseWaiting,
	sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion, sluicev1beta1.CanaryPhasePromoting,
	sluicev1beta1.CanaryPhaseFinalising, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed,
	sluicev1beta1.CanaryPhaseTerminating, sluicev1beta1.CanaryPhaseTerminated,
}

var allOutcomes = []sluicev1beta1.CheckOutcome{
	sluicev1beta1.CheckPassed, sluicev1beta1.CheckFailed, sluicev1beta1.CheckError,
	sluicev1beta1.CheckNoData, sluicev1beta1.CheckSkipped, sluicev1beta1.CheckInconclusive,
}

// recordMetrics records a reconcile that wrote the status of c (c.Status is
// the new status, prev the one before): the gauges, and the end of a release
// when this reconcile moved it into Succeeded or Failed.
func recordMetrics(prev *sluicev1beta1.CanaryStatus, c *sluicev1beta1.Canary, provider string) {
	recordCanaryMetrics(c)
	recordRelease(prev, c, provider)
}

// recordCanaryMetrics sets the gauges of a Canary from its spec and status.
// Its record replaces the one before whole, so series that no longer apply
// (a metric removed from the spec, a renamed target) are gone with it.
func recordCanaryMetrics(c *sluicev1beta1.Canary) {
	st := &c.Status
	g := &canaryGauges{
		phase:        st.Phase,
		weight:       float64(st.CanaryWeight),
		failedChecks: float64(st.FailedChecks),
		threshold:    float64(c.Threshold()),
		fgrStatus:    1,
		target:       c.Spec.TargetRef.Name,
	}
	switch st.Phase {
	case sluicev1beta1.CanaryPhaseProgressing:
		g.fgrStatus = 0
	case sluicev1beta1.CanaryPhaseFailed:
		g.fgrStatus = 2
	}

	// The metrics of the spec, with their thresholds, and of the last step
	// that measured any, with their outcomes and values.
	index := map[string]int{}
	add := func(name string) *metricGauges {
		if i, ok := index[name]; ok {
			return &g.metrics[i]
		}
		index[name] = len(g.metrics)
		g.metrics = append(g.metrics, metricGauges{name: name, value: math.NaN(), min: math.NaN(), max: math.NaN()})
		return &g.metrics[len(g.metrics)-1]
	}
	if a := c.Spec.Analysis; a != nil {
		for _, m := range a.Metrics {
			mg := add(m.Name)
			mg.min, mg.max = thresholds(m)
		}
	}
	for name, res := range lastMetricChecks(st.History) {
		mg := add(name)
		mg.measured, mg.outcome = true, res.Outcome
		if res.Value != nil {
			if f, err := strconv.ParseFloat(*res.Value, 64); err == nil {
				mg.value = f
			}
		}
	}
	if setGauges(canaryKey{namespace: c.Namespace, name: c.Name}, g) {
		flaggerTotal.WithLabelValues(c.Namespace).Inc()
	}
}

// emitMetricValues emits the last measured value of every metric that has one.
func emitMetricValues(k canaryKey, g *canaryGauges, series func(float64, ...string)) {
	for _, m := range g.metrics {
		if m.measured && !math.IsNaN(m.value) {
			series(m.value, k.name, k.namespace, m.name)
		}
	}
}

// recordRelease counts a release and observes its duration when this
// reconcile ended it: the previous status was in the analysis (a phase that
// holds a rollout slot) and the new one is Succeeded or Failed. Later
// reconciles see the terminal phase in prev, so a release is counted once.
func recordRelease(prev *sluicev1beta1.CanaryStatus, c *sluicev1beta1.Canary, provider string) {
	st := &c.Status
	if !holdsSlot(prev.Phase) {
		return
	}
	var result string
	switch st.Phase {
	case sluicev1beta1.CanaryPhaseSucceeded:
		result = "succeeded"
	case sluicev1beta1.CanaryPhaseFailed:
		result = "failed"
	default:
		return
	}
	strategy := c.Strategy(provider)
	label := string(strategy)
	if strategy == sluicev1beta1.StrategyBlueGreen && c.Spec.Analysis != nil && c.Spec.Analysis.Mirror {
		label = "blue-green-mirror"
	}
	releases.WithLabelValues(c.Name, c.Namespace, label, result).Inc()
	analysisStatus := "completed"
	if c.Spec.SkipAnalysis {
		analysisStatus = "skipped"
	}
	if result == "succeeded" {
		flaggerSuccesses.WithLabelValues(c.Name, c.Namespace, string(strategy), analysisStatus).Inc()
	} else {
		flaggerFailures.WithLabelValues(c.Name, c.Namespace, string(strategy), analysisStatus).Inc()
	}
	// The release began when Progressing turned True; that time is kept
	// while it stays True, so prev holds it.
	started := meta.FindStatusCondition(prev.Conditions, sluicev1beta1.ProgressingCondition)
	if started == nil || started.Status != metav1.ConditionTrue || st.LastTransitionTime == nil {
		return
	}
	if d := st.LastTransitionTime.Sub(started.LastTransitionTime.Time); d >= 0 {
		analysisDuration.WithLabelValues(c.Name, c.Namespace, label, result).Observe(d.Seconds())
	}
}

// forgetCanaryMetrics deletes every series of a Canary, its webhooks' included.
func forgetCanaryMetrics(namespace, name string) {
	l := prometheus.Labels{"name": name, "namespace": namespace}
	for _, v := range perCanary {
		v.DeletePartialMatch(l)
	}
	webhooks.ForgetCanary(namespace, name)

	if !deleteGauges(canaryKey{namespace: namespace, name: name}) {
		return
	}
	flaggerTotal.WithLabelValues(namespace).Dec()
	if !namespaceHasGauges(namespace) {
		flaggerTotal.DeleteLabelValues(namespace)
	}
}

// lastMetricChecks returns the metric checks of the newest step that has any.
func lastMetricChecks(history []sluicev1beta1.CanaryStep) map[string]sluicev1beta1.CheckResult {
	out := map[string]sluicev1beta1.CheckResult{}
	for i := len(history) - 1; i >= 0 && len(out) == 0; i-- {
		for _, ch := range history[i].Checks {
			if ch.Kind == "metric" {
				out[ch.Name] = ch
			}
		}
	}
	return out
}

// thresholds is the accepted range of a metric, as pkg/metrics applies it:
// thresholdRange, or Flagger's deprecated threshold (a minimum for
// request-success-rate, a maximum otherwise). An open bound is NaN.
func thresholds(m sluicev1beta1.CanaryMetric) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	switch {
	case m.ThresholdRange != nil:
		if m.ThresholdRange.Min != nil {
			lo = *m.ThresholdRange.Min
		}
		if m.ThresholdRange.Max != nil {
			hi = *m.ThresholdRange.Max
		}
	case m.Threshold != 0 && m.Name == sluicev1beta1.MetricRequestSuccessRate:
		lo = m.Threshold
	case m.Threshold != 0:
		hi = m.Threshold
	}
	return lo, hi
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
