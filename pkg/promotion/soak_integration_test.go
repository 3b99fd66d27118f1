package promotion_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	traefikrouter "github.com/sluice-cd/sluice/pkg/router/traefik"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// appMetrics serves the application metrics of the kubernetes provider's
// builtins (http_request_duration_seconds_count by pod) for one namespace:
// the canary's pods answer every request, the primary's pods fail 20 of
// 100. The counters grow at each scrape, so the success rate is exact.
type appMetrics struct {
	ns    string
	mu    sync.Mutex
	count int
}

func (a *appMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	a.count++
	n := a.count
	a.mu.Unlock()
	canary := fmt.Sprintf(`kubernetes_namespace=%q,kubernetes_pod_name="web-staging-7d9f8b6c5-x2k4p"`, a.ns)
	primary := fmt.Sprintf(`kubernetes_namespace=%q,kubernetes_pod_name="web-staging-primary-5c6d7e8f9-q8w7e"`, a.ns)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = fmt.Fprintln(w, strings.Join([]string{
		fmt.Sprintf(`http_request_duration_seconds_count{%s,status="200"} %d`, canary, 100*n),
		fmt.Sprintf(`http_request_duration_seconds_count{%s,status="200"} %d`, primary, 80*n),
		fmt.Sprintf(`http_request_duration_seconds_count{%s,status="500"} %d`, primary, 20*n),
	}, "\n"))
}

// A bundle promoted in staging soaks with its metrics checked on the
// primary, by a real Prometheus: the primary's success rate is 80 % (the
// canary's, scaled to zero now, was 100 %), so the soak fails the bundle
// with SoakFailed, the check is in the stage's status, and production never
// gets a commit.
func TestReconciler_SoakMetricFailsTheBundle(t *testing.T) {
	f := newFixture(t)
	g := f.g
	target := httptest.NewServer(&appMetrics{ns: f.ns})
	t.Cleanup(target.Close)
	prom, err := testenv.StartPrometheus(strings.TrimPrefix(target.URL, "http://"))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(prom.Stop)
	f.r.Builtins = routerBuiltins()
	f.r.Metrics = &metrics.Checker{Client: f.env.Client, SecretReader: f.env.Client, DefaultAddress: prom.URL, Builtins: f.r.Builtins}

	c := &sluicev1beta1.Canary{}
	g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "web-staging"}, c)).To(Succeed())
	c.Spec.Analysis.Interval = &metav1.Duration{Duration: 5 * time.Second}
	c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{
		Name: sluicev1beta1.MetricRequestSuccessRate, Interval: &metav1.Duration{Duration: 30 * time.Second},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
	}}
	g.Expect(f.env.Client.Update(f.ctx, c)).To(Succeed())

	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[0].SoakTime = &metav1.Duration{Duration: 10 * time.Minute}
		p.Spec.Stages[0].SoakChecks = sluicev1beta1.SoakChecksMetrics
	})
	t0 := time.Now().UTC().Truncate(time.Second)
	f.push("1.1.0")
	f.reconcile(f.r, t0)
	stagingCommit := f.head()
	g.Expect(stageOf(f.get(), "staging").Commit).To(Equal(stagingCommit))
	afterStaging := f.commits()

	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(5*time.Second))
	f.reconcile(f.r, t0.Add(6*time.Second))
	g.Expect(stageOf(f.get(), "staging").State).To(Equal(sluicev1beta1.StageSoaking))

	// The first round runs at once; a restarted manager within the
	// analysis interval does not run another: the due time is in the status.
	now := t0.Add(8 * time.Second)
	f.reconcile(f.r, now)
	first := stageOf(f.get(), "staging").LastSoakCheck
	g.Expect(first).NotTo(BeNil())
	g.Expect(first.Time).To(BeTemporally("==", now))
	restarted := f.reconciler(f.r.Recorder)
	restarted.Metrics = f.r.Metrics
	f.reconcile(restarted, now.Add(3*time.Second))
	g.Expect(stageOf(f.get(), "staging").LastSoakCheck.Time).To(BeTemporally("==", now))

	// A round every analysis interval (5s on this Canary): NoData while
	// Prometheus has fewer than two samples holds the soak, then the
	// primary's 80 % fails it. The clock stays inside the soak time.
	g.Eventually(func() sluicev1beta1.StageState {
		now = now.Add(6 * time.Second)
		f.reconcile(f.r, now)
		return stageOf(f.get(), "staging").State
	}, 60*time.Second, time.Second).Should(Equal(sluicev1beta1.StageFailed))
	g.Expect(now.Before(t0.Add(5*time.Second + 10*time.Minute))).To(BeTrue())

	p := f.get()
	st := stageOf(p, "staging")
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonSoakFailed))
	g.Expect(st.Message).To(ContainSubstring("request-success-rate 80 is outside [99, +Inf]"))
	g.Expect(st.SoakChecks).To(HaveLen(1))
	g.Expect(st.SoakChecks[0].Outcome).To(Equal(sluicev1beta1.CheckFailed))
	g.Expect(*st.SoakChecks[0].Value).To(Equal("80"))
	g.Expect(st.LastSoakCheck).NotTo(BeNil())
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonSoakFailed))

	// The bundle goes no further, even once the soak time has passed.
	f.reconcile(f.r, t0.Add(time.Hour))
	g.Expect(stageOf(f.get(), "production").Bundle).To(BeEmpty())
	g.Expect(f.commits()).To(Equal(afterStaging))
	g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(ContainElement(sluicev1beta1.PipelineReasonSoakFailed))
}

// routerBuiltins are the real routers' builtin metrics.
func routerBuiltins() *router.Registry {
	r := router.NewRegistry()
	kubernetesrouter.Register(r)
	istiorouter.Register(r)
	traefikrouter.Register(r)
	gatewayapirouter.Register(r)
	return r
}
