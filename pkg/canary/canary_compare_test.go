package canary_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// trafficExporter serves request counters by namespace and deployment that
// grow at each scrape by 100 requests, of which errors[deployment] fail, as
// an application's /metrics would under steady traffic.
type trafficExporter struct {
	mu     sync.Mutex
	ns     string
	scrape int
	errors map[string]int
}

func (e *trafficExporter) setNamespace(ns string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ns = ns
}

func (e *trafficExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	e.scrape++
	n, ns := e.scrape, e.ns
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for d, failing := range e.errors {
		_, _ = fmt.Fprintf(w, "http_requests_total{namespace=%q,deployment=%q,code=\"200\"} %d\n", ns, d, (100-failing)*n)
		_, _ = fmt.Fprintf(w, "http_requests_total{namespace=%q,deployment=%q,code=\"500\"} %d\n", ns, d, failing*n)
	}
}

// successRate selects the measured side by {{ target }}: the canary's
// Deployment, then <target>-primary for the comparison.
const successRate = `100 - sum(rate(http_requests_total{namespace="{{ namespace }}",deployment="{{ target }}",code="500"}[{{ interval }}])) / ` +
	`sum(rate(http_requests_total{namespace="{{ namespace }}",deployment="{{ target }}"}[{{ interval }}])) * 100`

// Given a real Prometheus where the primary fails 2 % of requests, a canary
// failing 2 % too is promoted by a success rate compared against the primary
// (maxDelta: 1 point), although the absolute minimum of 99 % (a dry-run
// metric here, so it only records what it would have decided) fails it;
// a canary failing 6 % is rolled back. The status records both sides'
// values at each step.
func TestCanary_ComparedAgainstThePrimary(t *testing.T) {
	t.Parallel()
	exporter := &trafficExporter{errors: map[string]int{"same": 2, "same-primary": 2, "regress": 6, "regress-primary": 2,
		"drift": 6, "drift-primary": 2}}
	srv := httptest.NewServer(exporter)
	t.Cleanup(srv.Close)
	prom, err := testenv.StartPrometheus(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	checker := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: builtins(), DefaultAddress: prom.URL}
	f := newFixture(t, withMetrics(checker))
	exporter.setNamespace(f.ns)

	analysis := func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Threshold, c.Spec.Analysis.Iterations = 2, 3
		interval := &metav1.Duration{Duration: 10 * time.Second}
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{
			{Name: "success-vs-primary", Query: successRate, Interval: interval,
				Compare: &sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxDelta: ptr.To(1.0), Direction: "LowerIsWorse"}},
			{Name: "success-absolute", Query: successRate, Interval: interval, DryRun: true,
				ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		}
	}
	// The release starts once Prometheus has two scrapes of both sides, so
	// that no step meets an empty rate.
	f.g.Eventually(func() string {
		c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: f.ns},
			Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{Name: "regress"}, Analysis: &sluicev1beta1.CanaryAnalysis{}}}
		analysis(c)
		r := checker.Check(context.Background(), c, "", c.Spec.Analysis.Metrics[0])
		return string(r.Outcome) + ": " + r.Message
	}, 60*time.Second, 250*time.Millisecond).Should(HavePrefix("Failed: success-vs-primary 94 vs primary 98"))

	for _, name := range []string{"same", "regress"} {
		f.deployment(name, "1.0", 1)
		f.canary(name, name, analysis)
	}
	// "drift" is judged by the Mann-Whitney test alone: its first 7 steps
	// pass for want of samples, the 8th has enough and fails.
	f.deployment("drift", "1.0", 1)
	f.canary("drift", "drift", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Threshold, c.Spec.Analysis.Iterations, c.Spec.Analysis.HistoryLimit = 2, 20, 20
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{{Name: "success-tested", Query: successRate,
			Interval: &metav1.Duration{Duration: 10 * time.Second},
			Compare:  &sluicev1beta1.CanaryMetricCompare{Against: "primary", Direction: "LowerIsWorse", Test: "MannWhitney"}}}
	})
	for _, name := range []string{"same", "regress", "drift"} {
		f.waitPhase(name, sluicev1beta1.CanaryPhaseInitialized)
		f.setImage(name, "2.0")
	}

	same := f.waitPhase("same", sluicev1beta1.CanaryPhaseSucceeded)
	compared := lastCheck(same, "success-vs-primary")
	f.g.Expect(compared).NotTo(BeNil(), f.describe("same"))
	f.g.Expect(compared.Outcome).To(Equal(sluicev1beta1.CheckPassed))
	f.g.Expect(compared.ComparedAgainst).To(Equal("primary"))
	f.g.Expect(*compared.Value).To(Equal("98"))
	f.g.Expect(*compared.ComparedValue).To(Equal("98"))
	f.g.Expect(compared.Message).To(Equal("success-vs-primary 98 vs primary 98: not worse"))
	absolute := lastCheck(same, "success-absolute")
	f.g.Expect(absolute.Outcome).To(Equal(sluicev1beta1.CheckFailed), "the absolute threshold would have failed the canary")
	f.g.Expect(absolute.DryRun).To(BeTrue())
	f.g.Expect(*absolute.Value).To(Equal("98"))

	regress := f.waitPhase("regress", sluicev1beta1.CanaryPhaseFailed)
	compared = lastCheck(regress, "success-vs-primary")
	f.g.Expect(compared).NotTo(BeNil(), f.describe("regress"))
	f.g.Expect(compared.Outcome).To(Equal(sluicev1beta1.CheckFailed))
	f.g.Expect(*compared.Value).To(Equal("94"))
	f.g.Expect(*compared.ComparedValue).To(Equal("98"))
	f.g.Expect(compared.Message).To(Equal("success-vs-primary 94 vs primary 98: worse by 4, maxDelta 1"))
	f.g.Expect(regress.Status.FailedChecks).To(BeEquivalentTo(2))
	f.g.Expect(regress.Status.History[len(regress.Status.History)-1].Message).To(ContainSubstring("success-vs-primary 94 vs primary 98"))

	// The test's progress is in status: a sample per step; the first 7 steps
	// passed as InsufficientSamples, then two failed with the p-value
	// recorded (8, then 9, tied canary values all below as many tied
	// primary values: U = 0; at n = 8, sigma^2 = 64/12 * (17 - 2*(8^3-8)/240)
	// = 68.267, z = (64 - 32 - 0.5)/8.2624 = 3.8125, p = 6.88e-05).
	drift := f.waitPhase("drift", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(drift.Status.ComparisonSamples).To(HaveLen(1))
	samples := drift.Status.ComparisonSamples[0]
	f.g.Expect(samples.Name).To(Equal("success-tested"))
	f.g.Expect(samples.Canary).To(HaveLen(9), f.describe("drift"))
	f.g.Expect(samples.Canary).To(HaveEach("94"))
	f.g.Expect(samples.Compared).To(HaveEach("98"))
	var outcomes []string
	for _, step := range drift.Status.History {
		for _, c := range step.Checks {
			if c.Name == "success-tested" {
				outcomes = append(outcomes, string(c.Outcome)+"/"+c.Reason)
			}
		}
	}
	f.g.Expect(outcomes).To(HaveLen(9))
	f.g.Expect(outcomes[:7]).To(HaveEach("Passed/InsufficientSamples"))
	f.g.Expect(outcomes[7:]).To(HaveEach("Failed/"))
	tested := lastCheck(drift, "success-tested")
	f.g.Expect(tested.PValue).NotTo(BeNil())
	f.g.Expect(tested.Message).To(HavePrefix("success-tested 94 vs primary 98: significantly lower (Mann-Whitney over 9 samples per side: U=0"))
}
