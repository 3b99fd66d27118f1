package canary

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Flagger's two remaining series, under its names and labels, so that
// Flagger's dashboards and alerts (which read them) keep working after a
// migration. The other flagger_* series are in metrics.go.
var (
	// flaggerDuration is, as in Flagger, the time one analysis step takes
	// (Flagger's scheduler tick, Sluice's reconcile of a Canary in
	// analysis), not the length of a release: that is
	// sluice_canary_analysis_duration_seconds.
	flaggerDuration = newHistFamily("flagger_canary_duration_seconds",
		"Flagger-compatible: seconds one analysis step of a Canary took (a reconcile in Progressing or WaitingPromotion).",
		prometheus.DefBuckets) // Flagger's
	// flaggerInfo always has one series, of value 1.
	flaggerInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagger_info",
		Help: "Flagger-compatible: 1, labelled with Sluice's version and its default provider (Flagger's mesh provider).",
	}, []string{"version", "mesh_provider"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(flaggerDuration, flaggerInfo)
	// Kept here rather than in metrics.go's lists so that the two Flagger
	// series stay in one file.
	perCanary = append(perCanary, flaggerDuration)
	MetricNames = append(MetricNames, "flagger_canary_duration_seconds", "flagger_info")
}

// SetInfo sets flagger_info's one series: the manager calls it at start.
func SetInfo(version, defaultProvider string) {
	flaggerInfo.Reset()
	flaggerInfo.WithLabelValues(version, defaultProvider).Set(1)
}

// observeAnalysisStep records how long a reconcile of a Canary that was in
// analysis took, as Flagger times the ticks that run the analysis.
func observeAnalysisStep(c *sluicev1beta1.Canary, phase sluicev1beta1.CanaryPhase, took time.Duration) {
	switch phase {
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion:
		flaggerDuration.observe(c.Name, c.Namespace, took.Seconds())
	}
}
