// Command analysis measures the time one analysis step spends in its metric
// checks (`go run ./bench/analysis`, see docs/metrics.md "Speed"): 5 metrics
// on 3 providers whose queries take 50, 100 and 200 ms. The engine checks a
// step's metrics concurrently (at most --metric-concurrency at once), so the
// step should cost about its slowest query, not the sum of all of them. It
// prints the figures next to that goal, and the sequential run (concurrency
// 1) as the baseline, measured the same way.
//
// The three providers are real HTTP clients registered in a
// metrics.Providers map, each querying its own httptest server that answers
// after its latency; the MetricTemplates are read from a controller-runtime
// fake client (the benchmark measures the engine, not the API server). The
// path measured is the engine's own: canary.CheckMetrics over
// metrics.Checker.Check (template, render, cached client, query, judgement).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// backend is one provider: its MetricTemplate type, its query latency, and
// how many of the step's metrics it answers.
type backend struct {
	typ     string
	latency time.Duration
	metrics int
}

var backends = []backend{
	{typ: "datadog", latency: 50 * time.Millisecond, metrics: 2},
	{typ: "newrelic", latency: 100 * time.Millisecond, metrics: 2},
	{typ: "graphite", latency: 200 * time.Millisecond, metrics: 1},
}

// slack is what the goal allows above the slowest query (goroutines, the
// template read, the judgement).
const slack = 25 * time.Millisecond

func main() {
	fs := flag.NewFlagSet("analysis", flag.ExitOnError)
	runs := fs.Int("runs", 20, "Analysis steps measured per concurrency.")
	concurrency := fs.Int("metric-concurrency", canary.DefaultMetricConcurrency, "Metric queries of a step run at once (the engine's bound).")
	_ = fs.Parse(os.Args[1:])
	if *runs < 1 || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "analysis: -runs and -metric-concurrency must be at least 1")
		os.Exit(2)
	}
	ctx := context.Background()
	c, checker, slowest, sum, stop := setup()
	defer stop()

	// One step first, unmeasured: it builds and caches the providers' clients.
	if err := verify(canary.CheckMetrics(ctx, checker, c, "", *concurrency, nil)); err != nil {
		fmt.Fprintln(os.Stderr, "analysis:", err)
		os.Exit(1)
	}
	measure := func(limit int) []time.Duration {
		out := make([]time.Duration, 0, *runs)
		for range *runs {
			start := time.Now()
			res := canary.CheckMetrics(ctx, checker, c, "", limit, nil)
			out = append(out, time.Since(start))
			if err := verify(res); err != nil {
				fmt.Fprintln(os.Stderr, "analysis:", err)
				os.Exit(1)
			}
		}
		slices.Sort(out)
		return out
	}
	concurrent := measure(*concurrency)
	sequential := measure(1)

	q := func(d []time.Duration, p float64) time.Duration {
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond)
	}
	goal := slowest + slack
	verdict := "met"
	if q(concurrent, 0.5) > goal {
		verdict = "MISSED"
	}
	fmt.Printf("One analysis step: %d metrics on %d providers (", len(c.Spec.Analysis.Metrics), len(backends))
	for i, b := range backends {
		if i > 0 {
			fmt.Print(", ")
		}
		fmt.Printf("%s %s x%d", b.typ, b.latency, b.metrics)
	}
	fmt.Printf("), %d steps each\n", *runs)
	fmt.Printf("slowest query %s, sum of the queries %s\n\n", slowest, sum)
	fmt.Printf("%-36s %10s %10s %14s %8s\n", "analysis time of a step", "p50", "max", "goal (p50)", "")
	fmt.Printf("%-36s %10s %10s %14s %8s\n", fmt.Sprintf("concurrent (at most %d at once)", *concurrency),
		q(concurrent, 0.5), q(concurrent, 1), "<= "+goal.String(), verdict)
	fmt.Printf("%-36s %10s %10s %14s\n", "sequential (baseline, 1 at once)", q(sequential, 0.5), q(sequential, 1), "~ "+sum.String())
}

// setup starts one HTTP server per backend and returns a Canary whose
// metrics use them, the Checker that queries them, the slowest query's
// latency and the sum of all of them, and a stop function.
func setup() (*sluicev1beta1.Canary, *metrics.Checker, time.Duration, time.Duration, func()) {
	scheme := runtime.NewScheme()
	_ = sluicev1beta1.AddToScheme(scheme)
	var templates []client.Object
	providers := metrics.Providers{}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "bench"},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Iterations: 1},
		},
	}
	var servers []*httptest.Server
	var slowest, sum time.Duration
	for _, b := range backends {
		latency := b.latency
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "42")
		}))
		servers = append(servers, srv)
		providers[b.typ] = newHTTPProvider
		templates = append(templates, &sluicev1beta1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: b.typ, Namespace: "bench"},
			Spec: sluicev1beta1.MetricTemplateSpec{
				Provider: sluicev1beta1.MetricTemplateProvider{Type: b.typ, Address: srv.URL},
				Query:    "{{ target }}",
			},
		})
		for i := range b.metrics {
			c.Spec.Analysis.Metrics = append(c.Spec.Analysis.Metrics, sluicev1beta1.CanaryMetric{
				Name:           b.typ + "-" + strconv.Itoa(i),
				TemplateRef:    &sluicev1beta1.CrossNamespaceReference{Name: b.typ},
				ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(100.0)},
			})
			sum += latency
		}
		slowest = max(slowest, latency)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(templates...).Build()
	checker := &metrics.Checker{Client: reader, SecretReader: reader, Providers: providers}
	return c, checker, slowest, sum, func() {
		for _, s := range servers {
			s.Close()
		}
	}
}

// verify fails a step whose checks did not all pass: a figure measured on
// errors would say nothing.
func verify(res []sluicev1beta1.CheckResult) error {
	for _, r := range res {
		if r.Outcome != sluicev1beta1.CheckPassed {
			return fmt.Errorf("metric %s: %s %s", r.Name, r.Outcome, r.Message)
		}
	}
	return nil
}

// httpProvider is a provider whose answer to a query is the body of a GET
// to its address: a number.
type httpProvider struct {
	address string
	client  *http.Client
}

func newHTTPProvider(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	return &httpProvider{address: cfg.Address, client: &http.Client{}}, nil
}

// Query implements metrics.Provider.
func (p *httpProvider) Query(ctx context.Context, _ string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.address, nil)
	if err != nil {
		return 0, fmt.Errorf("failed to build the request: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("failed to query %s: %w", p.address, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return 0, fmt.Errorf("failed to read the answer: %w", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(body)), 64)
	if err != nil {
		return 0, fmt.Errorf("failed to parse the answer %q: %w", body, err)
	}
	return v, nil
}
