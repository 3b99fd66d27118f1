package webhooks

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The webhook metrics, served on the manager's metrics endpoint. Series are
// labelled with the Canary (name, namespace), the hook's type and its name,
// never its URL (which may carry credentials). pkg/canary deletes a Canary's
// series with ForgetCanary when the Canary goes away.
var (
	callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sluice_webhook_duration_seconds",
		Help: "Duration of webhook calls, retries included, by Canary, hook type and hook name.",
		// Hooks answer in milliseconds; load tests and gates may take their whole timeout.
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"name", "namespace", "type", "webhook"})
	calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_webhook_calls_total",
		Help: "Webhook calls by Canary, hook type, hook name and result (success: a 2xx answer; failure: anything else after the retries).",
	}, []string{"name", "namespace", "type", "webhook", "result"})
)

// MetricNames lists the names of the webhook metrics (for dashboards and their tests).
var MetricNames = []string{"sluice_webhook_duration_seconds", "sluice_webhook_calls_total"}

func init() {
	ctrlmetrics.Registry.MustRegister(callDuration, calls)
}

// forgetWindow is how long the calls of a forgotten Canary are kept out of
// the metrics: event hooks are delivered in the background and may finish
// after the Canary is gone.
const forgetWindow = time.Hour

// forgotten holds when each Canary (namespace/name) was forgotten.
var forgotten = struct {
	sync.Mutex
	at map[string]time.Time
}{at: map[string]time.Time{}}

// ForgetCanary deletes the series of a Canary's webhooks. Calls issued
// before, still in flight or queued, are not recorded when they end, so they
// cannot bring the series back; calls of a new Canary of the same name are.
func ForgetCanary(namespace, name string) {
	now := time.Now()
	forgotten.Lock()
	for k, t := range forgotten.at {
		if now.Sub(t) > forgetWindow {
			delete(forgotten.at, k)
		}
	}
	forgotten.at[namespace+"/"+name] = now
	forgotten.Unlock()
	l := prometheus.Labels{"name": name, "namespace": namespace}
	callDuration.DeletePartialMatch(l)
	calls.DeletePartialMatch(l)
}

// recordCall records a call of hook that began at start and ended now with
// err. issued is when it was asked for: when Call began, or when the event
// was queued.
func recordCall(c *sluicev1beta1.Canary, hook sluicev1beta1.CanaryWebhook, issued, start time.Time, err error) {
	forgotten.Lock()
	at, ok := forgotten.at[c.Namespace+"/"+c.Name]
	forgotten.Unlock()
	if ok && !issued.After(at) {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	typ := hook.TypeOrDefault()
	callDuration.WithLabelValues(c.Name, c.Namespace, typ, hook.Name).Observe(time.Since(start).Seconds())
	calls.WithLabelValues(c.Name, c.Namespace, typ, hook.Name, result).Inc()
}
