package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// readDeliveryDashboard reads charts/sluice/dashboards/delivery.json.
func readDeliveryDashboard(t *testing.T) dashboard {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "charts", "sluice", "dashboards", "delivery.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("the delivery dashboard is not valid JSON: %v", err)
	}
	return d
}

// promValues runs an instant query and returns its values, keyed by the
// labels of each series ("" for a series without labels).
func promValues(base, expr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("bad answer %s: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("prometheus refused %s: %s", expr, out.Error)
	}
	vals := map[string]float64{}
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil && s != "NaN" {
			return nil, fmt.Errorf("bad value %q: %w", s, err)
		}
		if s == "NaN" {
			v = math.NaN()
		}
		var keys []string
		for k, val := range r.Metric {
			keys = append(keys, k+"="+val)
		}
		vals[strings.Join(keys, ",")] = v
	}
	return vals, nil
}

// expandDelivery expands the dashboard's variables for a one-hour range over a namespace.
func expandDelivery(expr, ns string) string {
	return expandGrafana(strings.ReplaceAll(expr, "$__range_s", "3600"), ns)
}

// Given a real Prometheus scraping the manager's metrics registry and the
// delivery collector, one release promoted from a Git commit and one
// rolled back by failed checks, every panel of the delivery dashboard
// returns data for the namespace, with the values the releases give:
// 1 deployment, 24 per day over the hour, change failure rate 0.5, 2
// releases started, the lead time, its parts and the time to restore of
// the records, no drift.
func TestDeliveryDashboard_ShowsAReleaseAndARollback(t *testing.T) {
	t.Parallel()
	d := readDeliveryDashboard(t)
	queries := panelQueries(d)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		if m == nil || !strings.HasPrefix(m[1], "sluice_delivery_") {
			t.Fatalf("variable %s: want label_values(sluice_delivery_..., <label>), got %q", v.Name, text)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&canary.DeliveryCollector{Reader: env.Client})
	srv := httptest.NewServer(promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, reg}, promhttp.HandlerOpts{}))
	defer srv.Close()
	prom, err := testenv.StartPrometheus(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()

	f := newFixture(t)
	f.hooks.set("/promote", http.StatusForbidden)
	f.deployment("dora", "1.0", 1)
	f.canary("dora", "dora", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{
			hook("check", "rollout", f.hooks.url("/check")),
			hook("gate", "confirm-promotion", f.hooks.url("/promote")),
		}
	})
	f.waitPhase("dora", sluicev1beta1.CanaryPhaseInitialized)
	// Prometheus holds the zero counters and histograms before the first
	// release, so that the release is an increase.
	scraped := func() (int, error) {
		v, err := promValues(prom.URL, fmt.Sprintf(`count_over_time(sluice_delivery_promotions_total{namespace=%q}[1h]) + on (namespace, name) group_left count_over_time(sluice_delivery_lead_time_seconds_count{namespace=%q}[1h])`, f.ns, f.ns))
		return len(v), err
	}
	f.g.Eventually(scraped).Should(Equal(1))
	time.Sleep(2 * time.Second)

	f.setImage("dora", "2.0")
	f.waitPhase("dora", sluicev1beta1.CanaryPhaseWaitingPromotion)
	commit := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	f.setSource("dora", commit, commit.Add(time.Minute))
	f.g.Eventually(func() (string, error) {
		c := &sluicev1beta1.Canary{}
		err := f.get(c, "dora")
		if err != nil || c.Status.Delivery == nil || len(c.Status.Delivery.Releases) == 0 {
			return "", err
		}
		return c.Status.Delivery.Releases[0].SourceRevision, nil
	}).ShouldNot(BeEmpty())
	f.hooks.set("/promote", http.StatusOK)
	c := f.waitPhase("dora", sluicev1beta1.CanaryPhaseSucceeded)
	promoted := c.Status.Delivery.Releases[0]
	f.g.Expect(promoted.LeadTimeSeconds).NotTo(BeNil())

	f.hooks.set("/check", http.StatusInternalServerError)
	f.setImage("dora", "3.0")
	c = f.waitPhase("dora", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.Delivery.Releases).To(HaveLen(2))
	rolledBack := c.Status.Delivery.Releases[1]
	f.g.Expect(rolledBack.Outcome).To(Equal(sluicev1beta1.DeliveryRolledBack))
	f.g.Expect(rolledBack.Cause).To(Equal(sluicev1beta1.RollbackAnalysis))
	f.g.Expect(rolledBack.TimeToRestoreSeconds).NotTo(BeNil())

	secs := func(from, to *metav1.Time) float64 { return math.Round(to.Sub(from.Time).Seconds()) }
	leadTime := float64(*promoted.LeadTimeSeconds)
	one := func(v float64) types.GomegaMatcher {
		return And(HaveLen(1), ContainElement(BeNumerically("~", v, 1e-9)))
	}
	within := func(lo, hi float64) types.GomegaMatcher {
		return And(Not(BeEmpty()), HaveEach(And(BeNumerically(">=", lo), BeNumerically("<=", hi))))
	}
	bucket := func(v float64) (float64, float64) {
		lo := 0.0
		for _, b := range []float64{10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800} {
			if v <= b {
				return lo, b
			}
			lo = b
		}
		return lo, math.Inf(1)
	}
	lo, hi := bucket(leadTime)
	want := map[string][]types.GomegaMatcher{
		"Deployments":                      {one(1)},
		"Deployment frequency (per day)":   {one(24)},
		"Change failure rate":              {one(0.5)},
		"Releases started":                 {one(2)},
		"Mean time to restore":             {one(float64(*rolledBack.TimeToRestoreSeconds))},
		"Mean lead time for changes":       {one(leadTime)},
		"Lead time for changes (p50, p90)": {within(lo, hi), within(lo, hi)},
		"Lead time parts (mean)": {
			one(60),
			one(secs(promoted.AppliedTime, &promoted.StartTime)),
			one(secs(&promoted.StartTime, promoted.EndTime)),
		},
		"Rollbacks by cause":                    {HaveKeyWithValue("cause=Analysis", 1.0)},
		"Drift corrections (GitSync)":           {one(0)},
		"Deployments per day":                   {HaveEach(BeNumerically(">=", 1))},
		"Change failure rate (7 days)":          {one(0.5)},
		"Lead time for changes over time (p90)": {within(lo, hi)},
		"Drift corrections per hour":            {one(0)},
	}
	for title, exprs := range queries {
		matchers, ok := want[title]
		f.g.Expect(ok).To(BeTrue(), "panel %q has no expected values in this test", title)
		f.g.Expect(matchers).To(HaveLen(len(exprs)), title)
		for i, e := range exprs {
			f.g.Eventually(func() (map[string]float64, error) {
				return promValues(prom.URL, expandDelivery(e, f.ns))
			}).Should(matchers[i], "panel %q: %s", title, e)
			got, _ := promValues(prom.URL, expandDelivery(e, f.ns))
			t.Logf("%s: %v", title, got)
		}
	}
	f.g.Expect(want).To(HaveLen(len(queries)), "a panel of the test is not in the dashboard")

	// The PromQL of docs/delivery.md runs, and returns data but for drift
	// (no GitSync here).
	root, err := testenv.RepoRoot()
	f.g.Expect(err).NotTo(HaveOccurred())
	doc, err := os.ReadFile(filepath.Join(root, "docs", "delivery.md"))
	f.g.Expect(err).NotTo(HaveOccurred())
	blocks := promqlBlock.FindAllStringSubmatch(string(doc), -1)
	f.g.Expect(len(blocks)).To(BeNumerically(">=", 10))
	for _, b := range blocks {
		// Eventually, as for the panels: a scrape that times out on a
		// loaded machine marks the target's series stale until the next.
		f.g.Eventually(func(g Gomega) {
			vals, err := promValues(prom.URL, b[1])
			g.Expect(err).NotTo(HaveOccurred(), b[1])
			if !strings.Contains(b[1], "gitsync") {
				g.Expect(vals).NotTo(BeEmpty(), b[1])
			}
		}).Should(Succeed())
	}
}

// promqlBlock is a fenced promql block of a Markdown page.
var promqlBlock = regexp.MustCompile("(?s)```promql\n(.*?)```")
