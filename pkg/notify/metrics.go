package notify

import "github.com/prometheus/client_golang/prometheus"

// The notification metrics. A Dispatcher registers them with the Registerer
// of its options (the manager's metrics registry in the controller). Series
// are labelled with the AlertProvider's type and the Canary's namespace: no
// per-Canary label, so nothing is left behind when a Canary goes away.

// MetricNames lists the names of the notification metrics (for dashboards and their tests).
var MetricNames = []string{
	"sluice_notifications_delivered_total", "sluice_notifications_failed_total", "sluice_notifications_dropped_total",
}

func newDeliveredCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_notifications_delivered_total",
		Help: "Notifications delivered to AlertProviders, by provider type and the Canary's namespace.",
	}, []string{"type", "namespace"})
}

func newFailedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_notifications_failed_total",
		Help: "Notifications given up after their last attempt (or at once for a permanent error), by provider type and the Canary's namespace.",
	}, []string{"type", "namespace"})
}

func newDroppedCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_notifications_dropped_total",
		Help: "Notifications dropped because the queue was full or the dispatcher stopped.",
	})
}

// namespaceOf is the namespace label of a job: its Canary's namespace.
func namespaceOf(j job) string {
	if j.event.GitSync != nil {
		return j.event.GitSync.Namespace
	}
	if j.event.Pipeline != nil {
		return j.event.Pipeline.Namespace
	}
	if j.event.Canary == nil {
		return ""
	}
	return j.event.Canary.Namespace
}
