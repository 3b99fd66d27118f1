package datadog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

const (
	apiKey = "dd-api-key-5f1c0e2a9b"
	appKey = "dd-app-key-77d3a1c4e8f0"
)

// okAnswer is the documented example answer of GET /api/v1/query
// (docs.datadoghq.com/api/latest/metrics/query-timeseries-points).
const okAnswer = `{
  "error": null,
  "from_date": 1710000000000,
  "group_by": ["host"],
  "message": "success",
  "query": "avg:system.cpu.user{*}",
  "res_type": "time_series",
  "series": [{
    "aggr": "avg",
    "display_name": "system.cpu.user",
    "end": 1710003600000,
    "expression": "avg:system.cpu.user{*}",
    "interval": 60000,
    "length": 61,
    "metric": "system.cpu.user",
    "pointlist": [[1710000000000, 12.3], [1710000060000, 11.8]],
    "query_index": 0,
    "scope": "*",
    "start": 1710000000000,
    "tag_set": ["host:ip-10-0-0-12"],
    "unit": [{"family": "percentage", "name": "percent", "plural": "percent", "scale_factor": 1, "short_name": "%"}]
  }],
  "status": "ok",
  "to_date": 1710003600000
}`

// noDataAnswer is Datadog's answer to a query that matches no series.
const noDataAnswer = `{"status": "ok", "res_type": "time_series", "series": [], "from_date": 1710000000000, "to_date": 1710003600000, "query": "sum:trace.http.request.errors{service:none}.as_count()", "message": "", "group_by": []}`

func secret() map[string][]byte {
	return map[string][]byte{APIKeySecretKey: []byte(apiKey), ApplicationKeySecretKey: []byte(appKey)}
}

// server answers every request with code and body, after checking that it
// is the documented request.
func server(t *testing.T, code int, body string, check func(g Gomega, r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil {
			check(NewWithT(t), r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func provider(t *testing.T, address string) *Provider {
	t.Helper()
	p, err := New(context.Background(), metrics.ProviderConfig{Type: "datadog", Address: address, Secret: secret(),
		Headers: http.Header{"X-Team": {"payments"}}})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	dp := p.(*Provider)
	dp.now = func() time.Time { return time.Unix(1710003600, 0) }
	return dp
}

// TestDatadog_Query: the documented request (path, query, from/to over ten
// metric intervals, both key headers) and the newest point of the answer.
func TestDatadog_Query(t *testing.T) {
	g := NewWithT(t)
	q := "sum:trace.http.request.errors{service:podinfo,env:test}.as_count()"
	srv := server(t, http.StatusOK, okAnswer, func(g Gomega, r *http.Request) {
		g.Expect(r.Method).To(Equal(http.MethodGet))
		g.Expect(r.URL.Path).To(Equal("/api/v1/query"))
		g.Expect(r.URL.Query()).To(HaveLen(3))
		g.Expect(r.URL.Query().Get("query")).To(Equal(q))
		g.Expect(r.URL.Query().Get("from")).To(Equal("1710003300")) // 10 × 30s before to
		g.Expect(r.URL.Query().Get("to")).To(Equal("1710003600"))
		g.Expect(r.Header.Get("DD-API-KEY")).To(Equal(apiKey))
		g.Expect(r.Header.Get("DD-APPLICATION-KEY")).To(Equal(appKey))
		g.Expect(r.Header.Get("Accept")).To(Equal("application/json"))
		g.Expect(r.Header.Get("X-Team")).To(Equal("payments"))
		g.Expect(r.Header.Get("Authorization")).To(BeEmpty())
	})
	v, err := provider(t, srv.URL).Query(metrics.WithInterval(context.Background(), 30*time.Second), q)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(11.8))
}

// TestDatadog_NoData: no series, no points, only null points or NaN are
// ErrNoData.
func TestDatadog_NoData(t *testing.T) {
	for name, body := range map[string]string{
		"no series":   noDataAnswer,
		"no points":   `{"status":"ok","series":[{"expression":"sum:x{*}","scope":"*","pointlist":[]}]}`,
		"null points": `{"status":"ok","series":[{"expression":"sum:x{*}","scope":"*","pointlist":[[1710000000000,null],[1710000060000,null]]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := provider(t, server(t, http.StatusOK, body, nil).URL).Query(context.Background(), "sum:x{*}")
			g.Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
	// A trailing null point is skipped: the newest value is used.
	g := NewWithT(t)
	v, err := provider(t, server(t, http.StatusOK, `{"status":"ok","series":[{"expression":"sum:x{*}","pointlist":[[1,2.5],[2,null]]}]}`, nil).URL).
		Query(context.Background(), "sum:x{*}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(2.5))
}

// TestDatadog_MultipleSeries: a query grouped by a tag returns several
// series; they are named and no value is picked.
func TestDatadog_MultipleSeries(t *testing.T) {
	g := NewWithT(t)
	body := `{"status":"ok","series":[
	  {"expression":"avg:system.cpu.user{*} by {host}","scope":"host:b","tag_set":["host:b"],"pointlist":[[1,2]]},
	  {"expression":"avg:system.cpu.user{*} by {host}","scope":"host:a","tag_set":["host:a"],"pointlist":[[1,3]]}]}`
	_, err := provider(t, server(t, http.StatusOK, body, nil).URL).Query(context.Background(), "avg:system.cpu.user{*} by {host}")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{
		"avg:system.cpu.user{*} by {host}{host:a}", "avg:system.cpu.user{*} by {host}{host:b}"}))
}

// TestDatadog_Errors: refusals quote Datadog's message, never a key.
func TestDatadog_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"bad query", http.StatusBadRequest, `{"errors": ["Invalid query"]}`, "datadog answered 400 Bad Request: Invalid query"},
		{"forbidden", http.StatusForbidden, `{"errors": ["Forbidden"]}`, "datadog answered 403 Forbidden: Forbidden"},
		{"rate limited", http.StatusTooManyRequests, `{"errors": ["Too many requests"]}`, "datadog answered 429 Too Many Requests: Too many requests"},
		{"server error", http.StatusInternalServerError, `<html>Internal Server Error</html>`, "datadog answered 500 Internal Server Error: <html>Internal Server Error</html>"},
		{"status error", http.StatusOK, `{"status":"error","error":"Error parsing query: unable to parse sum:x{: Rule 'scope_expr' didn't match","series":[]}`,
			"datadog could not run the query: Error parsing query: unable to parse sum:x{: Rule 'scope_expr' didn't match"},
		{"malformed", http.StatusOK, `{"status":"ok","series":[`, "malformed datadog answer: unexpected end of JSON input"},
		{"oversized", http.StatusOK, `{"status":"ok","message":"` + strings.Repeat("a", 8<<20) + `"}`, "datadog: the answer is larger than 8 MiB: narrow the query"},
		{"echoed keys", http.StatusForbidden, `{"errors": ["API key ` + apiKey + ` with application key ` + appKey + ` is not valid"]}`,
			"datadog answered 403 Forbidden: API key *** with application key *** is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := provider(t, server(t, tc.code, tc.body, nil).URL).Query(context.Background(), "sum:x{*}")
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(apiKey))
			g.Expect(err.Error()).NotTo(ContainSubstring(appKey))
		})
	}
}

// TestDatadog_Config: each missing key is named; the region picks the site;
// an unknown site and clear-text http to another host are refused.
func TestDatadog_Config(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := New(ctx, metrics.ProviderConfig{Type: "datadog"})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("datadog needs a Secret (provider.secretRef) with the key datadog_api_key")))
	_, err = New(ctx, metrics.ProviderConfig{Type: "datadog", Secret: map[string][]byte{ApplicationKeySecretKey: []byte(appKey)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key datadog_api_key")))
	_, err = New(ctx, metrics.ProviderConfig{Type: "datadog", Secret: map[string][]byte{APIKeySecretKey: []byte(apiKey)}})
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key datadog_application_key")))
	g.Expect(err.Error()).NotTo(ContainSubstring(apiKey))

	for region, want := range map[string]string{"": "https://api.datadoghq.com", "eu1": "https://api.datadoghq.eu",
		"us5": "https://api.us5.datadoghq.com", "us1-fed": "https://api.ddog-gov.com"} {
		p, err := New(ctx, metrics.ProviderConfig{Type: "datadog", Region: region, Secret: secret()})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.(*Provider).base.String()).To(Equal(want), region)
	}
	_, err = New(ctx, metrics.ProviderConfig{Type: "datadog", Region: "mars1", Secret: secret()})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring(`datadog has no site "mars1": set provider.region to one of ap1, ap2, eu1, uk1, us1, us1-fed, us2-fed, us3, us5, or provider.address`)))
	_, err = New(ctx, metrics.ProviderConfig{Type: "datadog", Address: "http://datadog-proxy.monitoring:8080", Secret: secret()})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("http:// would send the API key in clear text")))
	p, err := New(ctx, metrics.ProviderConfig{Type: "datadog", Address: "https://datadog-proxy.monitoring:8443/", Secret: secret()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.(*Provider).base.String()).To(Equal("https://datadog-proxy.monitoring:8443"))
}

// TestDatadog_Transport: the context's deadline ends a slow request, and a
// redirect to another host is refused before the keys reach it.
func TestDatadog_Transport(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := provider(t, slow.URL).Query(ctx, "sum:x{*}")
	g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "%v", err)

	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("DD-API-KEY") != "" || r.Header.Get("DD-APPLICATION-KEY") != "" {
			leaked.Store(true)
		}
		_, _ = w.Write([]byte(okAnswer))
	}))
	defer other.Close()
	redirect := server(t, http.StatusOK, "", nil)
	redirect.Config.Handler = http.RedirectHandler(other.URL+"/api/v1/query", http.StatusFound)
	_, err = provider(t, redirect.URL).Query(context.Background(), "sum:x{*}")
	g.Expect(err).To(MatchError(ContainSubstring("refused a redirect to " + strings.TrimPrefix(other.URL, "http://"))))
	g.Expect(leaked.Load()).To(BeFalse())
}
