package webhooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// series reads the series of a collector in a namespace, keyed by their
// other labels ("k=v,k=v", sorted): counters and gauges by value,
// histograms by sample count.
func series(c prometheus.Collector, namespace string) map[string]float64 {
	ch := make(chan prometheus.Metric, 256)
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
		switch {
		case d.Histogram != nil:
			out[strings.Join(keys, ",")] = float64(d.GetHistogram().GetSampleCount())
		case d.Counter != nil:
			out[strings.Join(keys, ",")] = d.GetCounter().GetValue()
		default:
			out[strings.Join(keys, ",")] = d.GetGauge().GetValue()
		}
	}
	return out
}

func metricsCanary(namespace string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace}}
}

// Given a hook that answers 200 and a gate that answers 500 (retried once),
// each call is counted once with its result and timed once, labelled by the
// Canary, the type and the hook's name and never by the URL's credentials.
func TestClient_CallMetrics(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	g.Expect(err).NotTo(HaveOccurred())
	u.User = url.UserPassword("user", "s3cret")
	c := metricsCanary("metrics-calls")
	client := New()
	client.Backoff = time.Millisecond

	ok := sluicev1beta1.CanaryWebhook{Name: "load", Type: sluicev1beta1.WebhookPreRollout, URL: u.String() + "/ok"}
	gate := sluicev1beta1.CanaryWebhook{Name: "gate", Type: sluicev1beta1.WebhookConfirmRollout, URL: u.String() + "/fail", Retries: 1}
	g.Expect(client.Call(context.Background(), c, ok, sluicev1beta1.CanaryPhaseProgressing)).To(Succeed())
	g.Expect(client.Call(context.Background(), c, gate, sluicev1beta1.CanaryPhaseProgressing)).NotTo(Succeed())

	g.Expect(series(calls, c.Namespace)).To(Equal(map[string]float64{
		"name=podinfo,result=success,type=pre-rollout,webhook=load":     1,
		"name=podinfo,result=failure,type=confirm-rollout,webhook=gate": 1,
	}))
	g.Expect(series(callDuration, c.Namespace)).To(Equal(map[string]float64{
		"name=podinfo,type=pre-rollout,webhook=load":     1,
		"name=podinfo,type=confirm-rollout,webhook=gate": 1,
	}))
	for k := range series(calls, c.Namespace) {
		g.Expect(k).NotTo(Or(ContainSubstring("s3cret"), ContainSubstring("127.0.0.1")))
	}
	ForgetCanary(c.Namespace, c.Name)
	g.Expect(series(calls, c.Namespace)).To(BeEmpty())
	g.Expect(series(callDuration, c.Namespace)).To(BeEmpty())
}

// blockingServer holds every request until release is closed.
func blockingServer(release chan struct{}) (*httptest.Server, *atomic.Int32) {
	var received atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	return srv, &received
}

// Given a call in flight when its Canary is forgotten, its end does not
// bring the series back; a call of a new Canary of the same name is recorded.
func TestForgetCanary_CallInFlight(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv, received := blockingServer(release)
	defer srv.Close()
	c := metricsCanary("metrics-inflight")
	hook := sluicev1beta1.CanaryWebhook{Name: "load", Type: sluicev1beta1.WebhookRollout, URL: srv.URL, Timeout: "30s"}

	done := make(chan error)
	go func() { done <- New().Call(context.Background(), c, hook, sluicev1beta1.CanaryPhaseProgressing) }()
	g.Eventually(received.Load).Should(Equal(int32(1)))
	ForgetCanary(c.Namespace, c.Name)
	close(release)
	g.Expect(<-done).To(Succeed())
	g.Expect(series(calls, c.Namespace)).To(BeEmpty())
	g.Expect(series(callDuration, c.Namespace)).To(BeEmpty())

	g.Expect(New().Call(context.Background(), c, hook, sluicev1beta1.CanaryPhaseProgressing)).To(Succeed())
	g.Expect(series(calls, c.Namespace)).To(Equal(map[string]float64{"name=podinfo,result=success,type=rollout,webhook=load": 1}))
	ForgetCanary(c.Namespace, c.Name)
}

// Given an event queued before its Canary is forgotten and delivered after,
// no series is left behind.
func TestForgetCanary_QueuedEvent(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv, received := blockingServer(release)
	defer srv.Close()
	c := metricsCanary("metrics-event")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Webhooks: []sluicev1beta1.CanaryWebhook{
		{Name: "audit", Type: sluicev1beta1.WebhookEvent, URL: srv.URL, Timeout: "30s"},
	}}
	q := NewEventQueue(New(), logr.Discard(), 10, 1)
	q.Enqueue(c, false, "first", time.Now())
	q.Enqueue(c, false, "second", time.Now()) // waits in the queue
	g.Eventually(received.Load).Should(Equal(int32(1)))
	ForgetCanary(c.Namespace, c.Name)
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q.Stop(ctx)
	g.Expect(received.Load()).To(Equal(int32(2)))
	g.Expect(q.Failed()).To(BeZero())
	g.Expect(series(calls, c.Namespace)).To(BeEmpty())
	g.Expect(series(callDuration, c.Namespace)).To(BeEmpty())
}
