package canary_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// gathered reads, from the manager's metrics registry, the series of the
// Canary and webhook metrics in a namespace, keyed
// "family{k=v,...}" without the namespace label: counters and gauges by
// value, histograms by sample count.
func gathered(namespace string) (map[string]float64, error) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "sluice_canary_") && !strings.HasPrefix(name, "sluice_webhook_") && !strings.HasPrefix(name, "flagger_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var keys []string
			inNamespace := false
			for _, l := range m.GetLabel() {
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
			key := name + "{" + strings.Join(keys, ",") + "}"
			switch {
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			default:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out, nil
}

// Given a Canary with webhooks, the manager's metrics endpoint registry
// holds its phase, weights, release count and duration and its webhook calls
// while it lives; a release is counted once; when the Canary is deleted,
// every one of its series is deleted and stays deleted.
func TestCanary_MetricsFollowTheCanary(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("observed", "1.0", 1)
	c := f.canary("observed", "observed", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{
			hook("load", "rollout", f.hooks.url("/load")),
			hook("audit", "event", f.hooks.url("/events")),
		}
	})
	series := func() (map[string]float64, error) { return gathered(f.ns) }

	f.waitPhase("observed", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(series).Should(And(
		HaveKeyWithValue("sluice_canary_phase{name=observed,phase=Initialized}", 1.0),
		HaveKeyWithValue("sluice_canary_phase{name=observed,phase=Progressing}", 0.0),
		HaveKeyWithValue("sluice_canary_weight{name=observed}", 0.0),
		HaveKeyWithValue("flagger_canary_status{name=observed}", 1.0),
		HaveKeyWithValue("flagger_canary_weight{workload=observed-primary}", 100.0),
		HaveKeyWithValue("flagger_canary_total{}", 1.0),
	))

	f.setImage("observed", "2.0")
	f.waitPhase("observed", sluicev1beta1.CanaryPhaseSucceeded)
	released := And(
		HaveKeyWithValue("sluice_canary_phase{name=observed,phase=Succeeded}", 1.0),
		HaveKeyWithValue("sluice_canary_releases_total{name=observed,result=succeeded,strategy=blue-green}", 1.0),
		HaveKeyWithValue("sluice_canary_analysis_duration_seconds{name=observed,result=succeeded,strategy=blue-green}", 1.0),
		HaveKeyWithValue("flagger_canary_successes_total{analysis_status=completed,deployment_strategy=blue-green,name=observed}", 1.0),
		HaveKeyWithValue("flagger_canary_duration_seconds{name=observed}", BeNumerically(">=", 1.0)),
		HaveKeyWithValue("sluice_webhook_calls_total{name=observed,result=success,type=rollout,webhook=load}", BeNumerically(">=", 2.0)),
		HaveKeyWithValue("sluice_webhook_duration_seconds{name=observed,type=rollout,webhook=load}", BeNumerically(">=", 2.0)),
		HaveKey("sluice_webhook_calls_total{name=observed,result=success,type=event,webhook=audit}"),
	)
	f.g.Eventually(series).Should(released)
	// Later reconciles of the Succeeded Canary do not count the release again.
	f.annotate("observed", "example.com/touch", "1")
	f.g.Consistently(series, 2*time.Second, 200*time.Millisecond).Should(released)

	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "observed")) }).Should(BeTrue())
	f.g.Eventually(series).Should(BeEmpty())
	// Event webhooks of the deletion, delivered in the background, do not bring series back.
	f.g.Eventually(f.hooks.count("/events")).Should(BeNumerically(">=", 1))
	f.g.Consistently(series, 2*time.Second, 200*time.Millisecond).Should(BeEmpty())
}

// Given a real Prometheus scraping the manager's metrics registry, and a
// release that progresses, has a failing event webhook and is aborted, the
// dashboard's Canary and webhook panels show it: each of their queries,
// for the release's namespace, returns series, so their metric and label
// names match what Sluice exports.
func TestDashboard_ShowsARelease(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	prom, err := testenv.StartPrometheus(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	queries := panelQueries(readDashboard(t))
	f := newFixture(t, withMetrics(&metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: builtins(), DefaultAddress: prom.URL}))

	shows := func(title string) func() error {
		return func() error {
			exprs, ok := queries[title]
			if !ok {
				return fmt.Errorf("no panel %q", title)
			}
			for _, e := range exprs {
				n, err := promQuery(prom.URL, expandGrafana(e, f.ns))
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("panel %q: no series for %s", title, e)
				}
			}
			return nil
		}
	}

	f.hooks.set("/broken", http.StatusInternalServerError)
	f.deployment("shown", "1.0", 1)
	f.canary("shown", "shown", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 1000
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{
			{Name: "success", Query: "vector(99.5)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		}
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{
			hook("load", "rollout", f.hooks.url("/load")),
			hook("audit", "event", f.hooks.url("/broken")),
		}
	})
	f.waitPhase("shown", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("shown", "2.0")
	f.waitPhase("shown", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Eventually(f.hooks.count("/load")).Should(BeNumerically(">=", 2))
	for _, title := range []string{"Rollouts in progress", "Rollouts in progress: canaries and weights", "Canaries by phase",
		"Canary weights over time", "Metric values vs thresholds", "Failed checks vs threshold", "Webhook latency (p95)", "Webhook failures"} {
		f.g.Eventually(shows(title)).Should(Succeed())
	}
	f.annotate("shown", sluicev1beta1.AbortAnnotation, "1")
	f.waitPhase("shown", sluicev1beta1.CanaryPhaseFailed)
	for _, title := range []string{"Failed canaries", "Releases in the last 24h", "Release duration", "Release failures"} {
		f.g.Eventually(shows(title)).Should(Succeed())
	}
}
