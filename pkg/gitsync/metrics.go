package gitsync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The GitSync metrics, served on the manager's metrics endpoint. Every series
// of a GitSync is deleted when the GitSync goes away.
var (
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_gitsync_sync_duration_seconds",
		Help:    "Duration of GitSync syncs (fetch, build, apply, prune, health wait), by result (success or failure).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"name", "namespace", "result"})
	appliedObjects = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_gitsync_applied_objects",
		Help: "Number of objects in the inventory of a GitSync after its last successful sync.",
	}, []string{"name", "namespace"})
	syncFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_gitsync_failures_total",
		Help: "Failed GitSync syncs, by reason (FetchFailed, BuildFailed, ApplyFailed, PruneFailed, HealthCheckFailed, CredentialsFailed).",
	}, []string{"name", "namespace", "reason"})
	lastApplied = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_gitsync_last_applied_timestamp_seconds",
		Help: "Unix time of the last successful apply of a GitSync.",
	}, []string{"name", "namespace"})
)

// MetricNames lists the names of the GitSync metrics (for dashboards and their tests).
var MetricNames = []string{
	"sluice_gitsync_sync_duration_seconds",
	"sluice_gitsync_applied_objects",
	"sluice_gitsync_failures_total",
	"sluice_gitsync_last_applied_timestamp_seconds",
}

func init() {
	ctrlmetrics.Registry.MustRegister(syncDuration, appliedObjects, syncFailures, lastApplied)
}

// recordSync records one sync: its duration and, on failure, its reason; on
// success the inventory size and the time of the apply.
func recordSync(name, namespace string, d time.Duration, failureReason string, objects int, at time.Time) {
	if failureReason != "" {
		syncDuration.WithLabelValues(name, namespace, "failure").Observe(d.Seconds())
		syncFailures.WithLabelValues(name, namespace, failureReason).Inc()
		return
	}
	syncDuration.WithLabelValues(name, namespace, "success").Observe(d.Seconds())
	appliedObjects.WithLabelValues(name, namespace).Set(float64(objects))
	lastApplied.WithLabelValues(name, namespace).Set(float64(at.Unix()))
}

// forgetMetrics deletes every series of a GitSync.
func forgetMetrics(name, namespace string) {
	l := prometheus.Labels{"name": name, "namespace": namespace}
	syncDuration.DeletePartialMatch(l)
	syncFailures.DeletePartialMatch(l)
	appliedObjects.DeletePartialMatch(l)
	lastApplied.DeletePartialMatch(l)
	driftCorrections.DeletePartialMatch(l)
}
