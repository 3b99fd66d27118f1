package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // of collapsed rows
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "charts", "sluice", "dashboards", "sluice.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	return d
}

// flatten lists the panels, those of collapsed rows included, without the rows.
func flatten(panels []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range panels {
		if p.Type == "row" {
			out = append(out, flatten(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

var (
	stringLiteral = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchers      = regexp.MustCompile(`\{[^{}]*\}`)
	ranges        = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping      = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identifier    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	labelValues   = regexp.MustCompile(`^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`)
	grafanaVar    = regexp.MustCompile(`\$\{?(\w+)\}?`)
)

// promqlKeywords are the words of PromQL that are not metric names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true, "atan2": true,
}

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping label
// lists are removed, that are not keywords, numbers, Grafana variables or
// function and aggregation names (followed by "(").
func metricNames(expr string) []string {
	s := stringLiteral.ReplaceAllString(expr, `""`)
	s = matchers.ReplaceAllString(s, " ")
	s = ranges.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.$") {
			continue // 1e3, 5m, $var
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") || promqlKeywords[strings.ToLower(word)] {
			continue
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	sort.Strings(names)
	return names
}

func TestMetricNames_Extraction(t *testing.T) {
	g := NewWithT(t)
	for expr, want := range map[string][]string{
		`sum(sluice_canary_phase{namespace=~"$namespace", phase=~"A|B"}) or vector(0)`:                                        {"sluice_canary_phase"},
		`histogram_quantile(0.95, sum by (le, type) (rate(sluice_webhook_duration_seconds_bucket{a="b"}[$__rate_interval])))`: {"sluice_webhook_duration_seconds_bucket"},
		`time() - sluice_gitsync_last_applied_timestamp_seconds{namespace=~"$namespace"}`:                                     {"sluice_gitsync_last_applied_timestamp_seconds"},
		`max by (namespace, name) (a and on (namespace, name) (b == 1)) * 2 + 1e3`:                                            {"a", "b"},
		`sum without (pod) (rate(x[5m] offset 1h)) / ignoring (le) group_left y`:                                              {"x", "y"},
		`up{job="sum(rate(not_a_metric[5m]))"}`:                                                                               {"up"},
	} {
		g.Expect(metricNames(expr)).To(Equal(want), expr)
	}
}

// registered tells whether the registry of the manager's metrics endpoint
// has a collector named name: registering a probe of that name fails then.
func registered(name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "Probe of a registered name."})
	if err := ctrlmetrics.Registry.Register(probe); err != nil {
		return true
	}
	ctrlmetrics.Registry.Unregister(probe)
	return false
}

// exported tells whether a name in a query is a series Sluice exports: a
// registered metric, or the _bucket, _sum or _count series of one.
func exported(name string) bool {
	if registered(name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && registered(base) {
			return true
		}
	}
	return false
}

// Given the dashboard of the chart: it parses; it has panels for the
// rollouts in progress, the weights over time, the metric values against
// their thresholds and the failures; every query parses in a real
// Prometheus and names only metrics registered on the manager's metrics
// endpoint.
func TestDashboard(t *testing.T) {
	g := NewWithT(t)
	d := readDashboard(t)
	g.Expect(d.UID).NotTo(BeEmpty())
	g.Expect(d.Title).NotTo(BeEmpty())

	// The notification counters are registered by the Dispatcher, as in cmd/sluice.
	dispatcher, err := notify.NewDispatcher(notify.DispatcherOptions{Reader: env.Client, Registerer: ctrlmetrics.Registry, Logger: logr.Discard()})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = dispatcher.Stop(context.Background()) }()
	// The probe sees registered metrics, series or not, and only those.
	for _, list := range [][]string{canary.MetricNames, webhooks.MetricNames, notify.MetricNames, gitsync.MetricNames} {
		for _, name := range list {
			g.Expect(registered(name)).To(BeTrue(), "%s is listed but not registered", name)
		}
	}
	g.Expect(registered("sluice_canary_not_a_metric")).To(BeFalse())
	g.Expect(exported("sluice_webhook_duration_seconds_bucket")).To(BeTrue())
	g.Expect(exported("sluice_webhook_duration_seconds_total")).To(BeFalse())

	panels := flatten(d.Panels)
	ids := map[int]bool{}
	queries := map[string][]string{} // panel title -> expressions
	for _, p := range panels {
		g.Expect(p.Title).NotTo(BeEmpty(), "panel %d has no title", p.ID)
		g.Expect(ids).NotTo(HaveKey(p.ID), "panel id %d is used twice", p.ID)
		ids[p.ID] = true
		g.Expect(p.GridPos.W).To(BeNumerically(">", 0), p.Title)
		g.Expect(p.GridPos.H).To(BeNumerically(">", 0), p.Title)
		g.Expect(p.GridPos.X+p.GridPos.W).To(BeNumerically("<=", 24), p.Title)
		g.Expect(p.Targets).NotTo(BeEmpty(), "panel %q has no query", p.Title)
		g.Expect(p.Datasource).NotTo(BeNil(), p.Title)
		g.Expect(p.Datasource.UID).To(Equal("${datasource}"), p.Title)
		for _, tg := range p.Targets {
			g.Expect(strings.TrimSpace(tg.Expr)).NotTo(BeEmpty(), p.Title)
			queries[p.Title] = append(queries[p.Title], tg.Expr)
		}
	}

	// The panels the issue asks for, each on the metrics that show it.
	uses := func(titlePart string, metric ...string) {
		t.Helper()
		for title, exprs := range queries {
			if !strings.Contains(strings.ToLower(title), strings.ToLower(titlePart)) {
				continue
			}
			var names []string
			for _, e := range exprs {
				names = append(names, metricNames(e)...)
			}
			if ok, _ := ContainElements(metric).Match(names); ok {
				return
			}
		}
		t.Errorf("no panel titled %q queries %v", titlePart, metric)
	}
	uses("rollouts in progress", "sluice_canary_phase")
	uses("weights over time", "sluice_canary_weight")
	uses("metric values vs thresholds", "sluice_canary_metric_value", "sluice_canary_metric_threshold")
	uses("release failures", "sluice_canary_releases_total")
	uses("webhook failures", "sluice_webhook_calls_total")
	uses("notification failures", "sluice_notifications_failed_total")
	uses("gitsync failures", "sluice_gitsync_failures_total")

	var exprs []string
	for _, list := range queries {
		exprs = append(exprs, list...)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		g.Expect(m).NotTo(BeNil(), "variable %s: want label_values(<metric>..., <label>), got %q", v.Name, text)
		g.Expect(exported(m[1])).To(BeTrue(), "variable %s queries %s, which Sluice does not export", v.Name, m[1])
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		g.Expect(names).NotTo(BeEmpty(), "query %q names no metric", e)
		for _, n := range names {
			g.Expect(exported(n)).To(BeTrue(), "query %q names %s, which Sluice does not export", e, n)
			used[n] = true
		}
	}
	t.Logf("%d queries in %d panels use %d metrics", len(exprs), len(panels), len(used))

	prom, err := testenv.StartPrometheus()
	g.Expect(err).NotTo(HaveOccurred())
	defer prom.Stop()
	for _, e := range exprs {
		_, err := promQuery(prom.URL, expandGrafana(e, ".*"))
		g.Expect(err).NotTo(HaveOccurred(), e)
	}
}

// expandGrafana replaces Grafana's variables with values Prometheus accepts,
// $namespace with namespace.
func expandGrafana(expr, namespace string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval":
			return "1m"
		case "__range":
			return "1h"
		case "namespace":
			return namespace
		default: // canary: used in regular expressions, where "All" is .*
			return ".*"
		}
	})
}

// promQuery runs an instant query and returns the number of series of its
// result, or Prometheus's error.
func promQuery(base, expr string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("bad answer %s: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("prometheus refused the query: %s", out.Error)
	}
	if out.Data.ResultType != "vector" && out.Data.ResultType != "matrix" {
		return 1, nil // a scalar or a string
	}
	var series []json.RawMessage
	if err := json.Unmarshal(out.Data.Result, &series); err != nil {
		return 0, fmt.Errorf("bad result: %w", err)
	}
	return len(series), nil
}

// panelQueries maps the title of every panel to its queries.
func panelQueries(d dashboard) map[string][]string {
	out := map[string][]string{}
	for _, p := range flatten(d.Panels) {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}
