package metrics_test

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

// sides serves request counters per deployment that grow by fixed amounts
// at each scrape, so that each deployment's error rate is known exactly:
// requests per scrape and errors per scrape by deployment. "multi-primary"
// has two series of app_up, for the multiple-series error.
type sides struct {
	mu    sync.Mutex
	count int
}

var sideErrors = map[string]int{
	"same": 2, "same-primary": 2,
	"worse": 6, "worse-primary": 2, "worse-baseline": 5,
	"lonely": 2, // no primary: the compared side has no data
	"multi":  2, "multi-primary": 2,
}

func (s *sides) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.count++
	n := s.count
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var lines []string
	for d, e := range sideErrors {
		lines = append(lines,
			fmt.Sprintf(`app_requests_total{namespace="test",deployment=%q,code="200"} %d`, d, (100-e)*n),
			fmt.Sprintf(`app_requests_total{namespace="test",deployment=%q,code="500"} %d`, d, e*n),
			fmt.Sprintf(`app_up{deployment=%q} 1`, d))
	}
	lines = append(lines, `app_up{deployment="multi-primary",instance_id="b"} 1`)
	_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// errorRate is an error-rate query that selects the measured side by
// {{ target }}, as docs/metrics.md tells users to write them.
const errorRate = `sum(rate(app_requests_total{namespace="{{ namespace }}",deployment="{{ target }}",code="500"}[{{ interval }}])) / ` +
	`sum(rate(app_requests_total{namespace="{{ namespace }}",deployment="{{ target }}"}[{{ interval }}])) * 100`

// comparedCanary is a Canary of a deployment whose metrics go to p.
func comparedCanary(p *testenv.Prometheus, target string, samples ...sluicev1beta1.ComparisonSamples) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: target, Namespace: "test"},
		Spec: sluicev1beta1.CanarySpec{
			MetricsServer: p.URL,
			TargetRef:     sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			Analysis:      &sluicev1beta1.CanaryAnalysis{Baseline: true},
		},
		Status: sluicev1beta1.CanaryStatus{ComparisonSamples: samples},
	}
}

func comparedMetric(query string, cmp sluicev1beta1.CanaryMetricCompare) sluicev1beta1.CanaryMetric {
	return sluicev1beta1.CanaryMetric{Name: "errors", Query: query, Interval: &metav1.Duration{Duration: 10 * time.Second}, Compare: &cmp}
}

// TestCheck_Compared runs compared metrics on a real Prometheus: each check
// queries the canary and the compared side (the same query with
// {{ target }} naming <target>-primary or <target>-baseline), records both
// values, and passes or fails by the tolerance, the absolute guard and the
// Mann–Whitney test; a side without data or in error ends the check as it
// would end any check.
func TestCheck_Compared(t *testing.T) {
	exporter := httptest.NewServer(&sides{})
	t.Cleanup(exporter.Close)
	p, err := testenv.StartPrometheus(strings.TrimPrefix(exporter.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second}
	// Wait until a rate has two scrapes to work with.
	g := NewWithT(t)
	eventually(g, func() sluicev1beta1.CheckResult {
		return k.Check(context.Background(), comparedCanary(p, "same"), "", comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxDelta: ptr.To(0.0)}))
	})

	worseSamples := sluicev1beta1.ComparisonSamples{Name: "errors",
		Canary:   []string{"5.5", "6.1", "5.9", "6.3", "5.8", "6", "6.2"},
		Compared: []string{"2", "2.1", "1.9", "2.2", "2", "1.8", "2.1"}}
	tests := []struct {
		name         string
		target       string
		metric       sluicev1beta1.CanaryMetric
		samples      []sluicev1beta1.ComparisonSamples
		want         sluicev1beta1.CheckOutcome
		wantValue    string // "" for none
		wantCompared string // "" for none
		wantReason   string
		wantMessage  string
		wantPValue   string // "" for none
		wantHeld     bool
	}{
		{name: "equal error rates pass", target: "same",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}),
			want:   sluicev1beta1.CheckPassed, wantValue: "2", wantCompared: "2", wantMessage: "errors 2 vs primary 2: not worse"},
		{name: "three times the primary's error rate fails", target: "worse",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}),
			want:   sluicev1beta1.CheckFailed, wantValue: "6", wantCompared: "2", wantMessage: "errors 6 vs primary 2: worse by 200%, maxIncrease 10%"},
		{name: "against the baseline, within maxDelta", target: "worse",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "baseline", MaxDelta: ptr.To(1.5)}),
			want:   sluicev1beta1.CheckPassed, wantValue: "6", wantCompared: "5", wantMessage: "errors 6 vs baseline 5: worse by 1, maxDelta 1.5"},
		{name: "success rates: lower is worse", target: "worse",
			metric: comparedMetric("100 - ("+errorRate+")", sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxDelta: ptr.To(1.0), Direction: "LowerIsWorse"}),
			want:   sluicev1beta1.CheckFailed, wantValue: "94", wantCompared: "98", wantMessage: "errors 94 vs primary 98: worse by 4, maxDelta 1"},
		{name: "the absolute guard fails first", target: "same",
			metric: func() sluicev1beta1.CanaryMetric {
				m := comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"})
				m.ThresholdRange = &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}
				return m
			}(),
			want: sluicev1beta1.CheckFailed, wantValue: "2", wantCompared: "2", wantMessage: "errors 2 is outside [-Inf, 1]"},
		{name: "a met guard is quoted after the comparison", target: "same",
			metric: func() sluicev1beta1.CanaryMetric {
				m := comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"})
				m.ThresholdRange = &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(5.0)}
				return m
			}(),
			want: sluicev1beta1.CheckPassed, wantValue: "2", wantCompared: "2", wantMessage: "errors 2 vs primary 2: not worse; errors 2 is within [-Inf, 5]"},
		{name: "no data on the compared side is NoData, never a pass", target: "lonely",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}),
			want:   sluicev1beta1.CheckNoData, wantValue: "2", wantMessage: "primary: the query returned no data (is it receiving traffic?)"},
		{name: "no data on the compared side follows noData: Skip", target: "lonely",
			metric: func() sluicev1beta1.CanaryMetric {
				m := comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"})
				m.NoData = sluicev1beta1.PolicySkip
				return m
			}(),
			want: sluicev1beta1.CheckSkipped, wantValue: "2", wantMessage: "primary: the query returned no data (is it receiving traffic?); skipped (noData: Skip)"},
		{name: "no data on the canary's side", target: "nothing",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}),
			want:   sluicev1beta1.CheckNoData, wantMessage: "the query returned no data (is the canary receiving traffic?)"},
		{name: "an error on the compared side is an Error, held by onError: Hold", target: "multi",
			metric: func() sluicev1beta1.CanaryMetric {
				m := comparedMetric(`app_up{deployment="{{ target }}"}`, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"})
				m.OnError = sluicev1beta1.PolicyHold
				return m
			}(),
			want: sluicev1beta1.CheckError, wantValue: "1", wantReason: metrics.ReasonMultipleSeries, wantMessage: "primary: ", wantHeld: true},
		{name: "Mann-Whitney with too few samples and no tolerance passes as InsufficientSamples", target: "worse",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", Test: "MannWhitney"}),
			want:   sluicev1beta1.CheckPassed, wantValue: "6", wantCompared: "2", wantReason: "InsufficientSamples",
			wantMessage: "errors 6 vs primary 2: not judged yet (Mann-Whitney after 8 samples, 1 so far)"},
		{name: "Mann-Whitney over the status' samples and this step's fails a worse canary", target: "worse",
			metric:  comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", Test: "MannWhitney"}),
			samples: []sluicev1beta1.ComparisonSamples{worseSamples},
			want:    sluicev1beta1.CheckFailed, wantValue: "6", wantCompared: "2",
			// 8 canary values (7 from status, 6 now) all above 8 primary
			// values; ties within the sides: 6 twice (6), 2 three times (24),
			// 2.1 twice (6): 36. U1 = 64, sigma^2 = 64/12 * (17 - 36/240) =
			// 89.8667, z = (64 - 32 - 0.5)/9.47981 = 3.32285,
			// p = P(Z >= 3.32285) = 0.000445508.
			wantMessage: "errors 6 vs primary 2: significantly higher (Mann-Whitney over 8 samples per side: U=64, p=0.000446 < 0.05)",
			wantPValue:  "0.0004455"},
		{name: "Mann-Whitney of alike sides passes", target: "same",
			metric: comparedMetric(errorRate, sluicev1beta1.CanaryMetricCompare{Against: "primary", Test: "MannWhitney", MaxIncrease: "50%"}),
			samples: []sluicev1beta1.ComparisonSamples{{Name: "errors",
				Canary:   []string{"2", "2.1", "1.9", "2", "2.2", "1.8", "2.1"},
				Compared: []string{"2", "1.9", "2.1", "2", "2", "2.2", "1.8"}}},
			want: sluicev1beta1.CheckPassed, wantValue: "2", wantCompared: "2", wantPValue: "0.4127",
			wantMessage: "errors 2 vs primary 2: not significantly higher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res := k.Check(context.Background(), comparedCanary(p, tt.target, tt.samples...), "", tt.metric)
			g.Expect(res.Outcome).To(Equal(tt.want), "%+v", res)
			g.Expect(res.Message).To(HavePrefix(tt.wantMessage))
			g.Expect(res.Reason).To(Equal(tt.wantReason))
			g.Expect(res.Held).To(Equal(tt.wantHeld))
			g.Expect(res.ComparedAgainst).To(Equal(tt.metric.Compare.Against))
			g.Expect(res.Query).To(ContainSubstring(`deployment="` + tt.target + `"`))
			expectString(g, "value", res.Value, tt.wantValue)
			expectString(g, "comparedValue", res.ComparedValue, tt.wantCompared)
			expectString(g, "pValue", res.PValue, tt.wantPValue)
		})
	}
}

func expectString(g Gomega, what string, got *string, want string) {
	if want == "" {
		g.Expect(got).To(BeNil(), what)
		return
	}
	g.Expect(got).NotTo(BeNil(), what)
	g.Expect(*got).To(Equal(want), what)
}

// barrier answers a query only once two are in flight, so a check that
// ran its two queries one after the other times out.
type barrier struct {
	arrived chan string
	release chan struct{}
	once    sync.Once
}

func (b *barrier) Query(ctx context.Context, q string) (float64, error) {
	b.arrived <- q
	if len(b.arrived) == 2 {
		b.once.Do(func() { close(b.release) })
	}
	select {
	case <-b.release:
		return 1, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("the other side's query never started: %w", ctx.Err())
	}
}

// TestCheck_ComparedSidesRunConcurrently: a compared metric costs its
// slower query, not the sum: both sides are in flight at once.
func TestCheck_ComparedSidesRunConcurrently(t *testing.T) {
	g := NewWithT(t)
	b := &barrier{arrived: make(chan string, 2), release: make(chan struct{})}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 2 * time.Second, DefaultAddress: "http://unused",
		Providers: metrics.Providers{"prometheus": func(context.Context, metrics.ProviderConfig) (metrics.Provider, error) { return b, nil }}}
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "test"},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{Kind: "Deployment", Name: "web"}, Service: sluicev1beta1.CanaryService{Name: "front"}}}
	res := k.Check(context.Background(), c, "", comparedMetric(`up{d="{{ target }}",s="{{ service }}"}`, sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxDelta: ptr.To(0.0)}))
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), res.Message)
	close(b.arrived)
	var queries []string
	for q := range b.arrived {
		queries = append(queries, q)
	}
	g.Expect(queries).To(ConsistOf(`up{d="web",s="front"}`, `up{d="web-primary",s="front-primary"}`))
}
