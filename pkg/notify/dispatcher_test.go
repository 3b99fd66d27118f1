package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// counterValue reads a counter (or one series of a vector).
func counterValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		sum += d.GetCounter().GetValue()
	}
	return sum
}

// canaryWithAlerts returns a Canary whose alerts name providers in "test".
func canaryWithAlerts(alerts ...sluicev1beta1.CanaryAlert) *sluicev1beta1.Canary {
	c := failedRelease().Canary.DeepCopy()
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Alerts: alerts}
	return c
}

func alert(name, severity, providerName string) sluicev1beta1.CanaryAlert {
	return sluicev1beta1.CanaryAlert{Name: name, Severity: severity, ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: providerName}}
}

func newTestDispatcher(t *testing.T, opts DispatcherOptions, objs ...client.Object) *Dispatcher {
	t.Helper()
	if opts.Reader == nil {
		opts.Reader = fakeReader(objs...)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	opts.Logger = logr.Discard()
	d, err := NewDispatcher(opts)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return d
}

func named(p *sluicev1beta1.AlertProvider, name string) *sluicev1beta1.AlertProvider {
	p.Name = name
	return p
}

func TestDispatcher_DoesNotBlockOnSlowProviders(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer close(release)
	d := newTestDispatcher(t, DispatcherOptions{Workers: 1, QueueSize: 4, Timeout: 30 * time.Second},
		provider(TypeGeneric, srv.URL))
	c := canaryWithAlerts(alert("all", "", TypeGeneric))

	done := make(chan struct{})
	go func() {
		for range 50 {
			d.Dispatch(c, failedRelease())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Dispatch blocked on a provider that does not answer")
	}
	// One in flight, four queued, the rest dropped.
	g.Eventually(func() float64 { return counterValue(d.dropped) }).Should(BeNumerically(">=", 45))
}

func TestDispatcher_RetriesUntilSuccess(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{status: []int{503, 503, 200}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{}, provider(TypeDiscord, srv.URL))
	d.Dispatch(canaryWithAlerts(alert("chat", SeverityInfo, TypeDiscord)), failedRelease())
	g.Eventually(func() float64 { return counterValue(d.delivered) }).Should(Equal(1.0))
	g.Expect(rec.count()).To(Equal(3))
	g.Expect(counterValue(d.failed)).To(Equal(0.0))
	assertGolden(t, TypeDiscord, rec.last())
}

func TestDispatcher_GivesUpAfterMaxAttempts(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{status: []int{503}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{MaxAttempts: 3}, provider(TypeGeneric, srv.URL))
	d.Dispatch(canaryWithAlerts(alert("chat", "", TypeGeneric)), failedRelease())
	g.Eventually(func() float64 { return counterValue(d.failed) }).Should(Equal(1.0))
	g.Expect(rec.count()).To(Equal(3))
	g.Expect(counterValue(d.delivered)).To(Equal(0.0))
}

func TestDispatcher_PermanentErrorsAreNotRetried(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{status: []int{404}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{}, provider(TypeGeneric, srv.URL))
	d.Dispatch(canaryWithAlerts(alert("chat", "", TypeGeneric)), failedRelease())
	g.Eventually(func() float64 { return counterValue(d.failed) }).Should(Equal(1.0))
	g.Consistently(rec.count, 100*time.Millisecond).Should(Equal(1))
}

func TestDispatcher_QueueFullDropsAreCounted(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	rec := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.ServeHTTP(httptest.NewRecorder(), r)
		<-release
	}))
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{Workers: 1, QueueSize: 1}, provider(TypeGeneric, srv.URL))
	c := canaryWithAlerts(alert("chat", "", TypeGeneric))
	d.Dispatch(c, failedRelease())
	g.Eventually(rec.count).Should(Equal(1)) // the worker is busy
	for range 3 {
		d.Dispatch(c, failedRelease()) // one is queued, two are dropped
	}
	g.Expect(counterValue(d.dropped)).To(Equal(2.0))
	close(release)
	g.Eventually(func() float64 { return counterValue(d.delivered) }).Should(Equal(2.0))
}

func TestDispatcher_Routing(t *testing.T) {
	rec := map[string]*receiver{}
	var objs []client.Object
	for _, name := range []string{"info", "warn", "error", "default"} {
		rec[name] = &receiver{}
		srv := httptest.NewServer(rec[name])
		t.Cleanup(srv.Close)
		objs = append(objs, named(provider(TypeGeneric, srv.URL), name))
	}
	tests := []struct {
		name     string
		canary   *sluicev1beta1.Canary
		severity string
		want     []string
	}{
		{"info event", canaryWithAlerts(alert("a", "", "info"), alert("b", SeverityWarn, "warn"), alert("c", SeverityError, "error")), SeverityInfo, []string{"info"}},
		{"warn event", canaryWithAlerts(alert("a", SeverityInfo, "info"), alert("b", SeverityWarn, "warn"), alert("c", SeverityError, "error")), SeverityWarn, []string{"info", "warn"}},
		{"error event", canaryWithAlerts(alert("a", "", "info"), alert("b", SeverityWarn, "warn"), alert("c", SeverityError, "error")), SeverityError, []string{"info", "warn", "error"}},
		{"no alerts: the default provider", canaryWithAlerts(), SeverityInfo, []string{"default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := map[string]int{}
			for k, r := range rec {
				before[k] = r.count()
			}
			d := newTestDispatcher(t, DispatcherOptions{DefaultProvider: &types.NamespacedName{Namespace: "test", Name: "default"}}, objs...)
			e := failedRelease()
			e.Severity = tt.severity
			d.Dispatch(tt.canary, e)
			g.Expect(d.Stop(context.Background())).To(Succeed())
			for k, r := range rec {
				want := 0
				for _, w := range tt.want {
					if w == k {
						want = 1
					}
				}
				g.Expect(r.count()-before[k]).To(Equal(want), k)
			}
		})
	}
}

func TestDispatcher_CrossNamespaceProviderAndCopies(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	p := provider(TypeGeneric, srv.URL)
	p.Namespace = "shared"
	d := newTestDispatcher(t, DispatcherOptions{}, p)
	c := canaryWithAlerts(sluicev1beta1.CanaryAlert{Name: "x", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: TypeGeneric, Namespace: "shared"}})
	e := failedRelease()
	e.Canary = nil
	e.Time = time.Time{}
	d.Dispatch(c, e)
	// The caller may change its Canary after Dispatch returns.
	c.Status.Phase = sluicev1beta1.CanaryPhaseSucceeded
	g.Expect(d.Stop(context.Background())).To(Succeed())
	g.Expect(rec.count()).To(Equal(1))
	g.Expect(string(rec.last())).To(ContainSubstring(`"phase":"Failed"`))
	g.Expect(string(rec.last())).NotTo(ContainSubstring(`"timestamp":"0001-01-01`))
}

func TestDispatcher_StopDrainsAndRejects(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{Workers: 2}, provider(TypeGeneric, srv.URL))
	c := canaryWithAlerts(alert("chat", "", TypeGeneric))
	for range 10 {
		d.Dispatch(c, failedRelease())
	}
	g.Expect(d.Stop(context.Background())).To(Succeed())
	g.Expect(rec.count()).To(Equal(10))
	g.Expect(counterValue(d.delivered)).To(Equal(10.0))
	d.Dispatch(c, failedRelease())
	g.Expect(counterValue(d.dropped)).To(Equal(1.0))
	g.Expect(d.Stop(context.Background())).To(Succeed(), "Stop is idempotent")
}

func TestDispatcher_MissingProviderFails(t *testing.T) {
	g := NewWithT(t)
	d := newTestDispatcher(t, DispatcherOptions{MaxAttempts: 2})
	d.Dispatch(canaryWithAlerts(alert("chat", "", "absent")), failedRelease())
	g.Eventually(func() float64 { return counterValue(d.failed) }).Should(Equal(1.0))
}

func TestDispatcher_RegistersMetrics(t *testing.T) {
	g := NewWithT(t)
	reg := prometheus.NewRegistry()
	d1 := newTestDispatcher(t, DispatcherOptions{Registerer: reg})
	d2 := newTestDispatcher(t, DispatcherOptions{Registerer: reg})
	d1.Dispatch(canaryWithAlerts(), Event{}) // no alerts, no default: nothing queued
	d2.enqueue(job{event: Event{Canary: &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "x"}}}})
	g.Expect(d2.Stop(context.Background())).To(Succeed())
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	g.Expect(names).To(ContainElements("sluice_notifications_failed_total", "sluice_notifications_dropped_total"))
}

func TestNewDispatcher_InvalidOptions(t *testing.T) {
	g := NewWithT(t)
	_, err := NewDispatcher(DispatcherOptions{})
	g.Expect(err).To(MatchError(ContainSubstring("Reader")))
	_, err = NewDispatcher(DispatcherOptions{Reader: fakeReader(), DefaultProvider: &types.NamespacedName{Namespace: "slack"}})
	g.Expect(err).To(MatchError(ContainSubstring("namespace/name")))
}
