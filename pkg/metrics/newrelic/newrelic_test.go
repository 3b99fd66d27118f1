package newrelic

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

const (
	accountID = "1234567"
	queryKey  = "NRIQ-3fa9c1d27be04e18a6"
)

// countAnswer has the shape of the Insights query API's documented answer to
// SELECT count(*) FROM PageView (results, then metadata).
const countAnswer = `{
  "results": [{"count": 1523}],
  "metadata": {
    "eventTypes": ["PageView"],
    "eventType": "PageView",
    "openEnded": true,
    "beginTime": "2026-12-07T04:44:00Z",
    "endTime": "2026-12-07T04:45:00Z",
    "beginTimeMillis": 1796618640000,
    "endTimeMillis": 1796618700000,
    "rawSince": "60 SECONDS AGO",
    "rawUntil": "NOW",
    "rawCompareWith": "",
    "guid": "2f6a59e0-1d6b-4f5b-a7b1-4b0b1f0e9b8d",
    "routerGuid": "2f6a59e0-1d6b-4f5b-a7b1-4b0b1f0e9b8d",
    "messages": [],
    "contents": [{"function": "count", "attribute": "*", "simple": true}]
  }
}`

func secret() map[string][]byte {
	return map[string][]byte{AccountIDSecretKey: []byte(accountID), QueryKeySecretKey: []byte(queryKey)}
}

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

func query(t *testing.T, srv *httptest.Server, q string) (float64, error) {
	t.Helper()
	p, err := New(context.Background(), metrics.ProviderConfig{Type: "newrelic", Address: srv.URL, Secret: secret()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return p.Query(metrics.WithInterval(context.Background(), 2*time.Minute), q)
}

// TestNewRelic_Query: the documented request (account path, nrql with
// Flagger's SINCE over the metric interval, the query key header) and the
// value of each result shape.
func TestNewRelic_Query(t *testing.T) {
	g := NewWithT(t)
	q := "SELECT filter(sum(nginx_ingress_controller_requests), WHERE status >= '500') / sum(nginx_ingress_controller_requests) * 100 FROM Metric WHERE ingress = 'podinfo'\n"
	srv := server(t, http.StatusOK, `{"results":[{"result": 1.25}]}`, func(g Gomega, r *http.Request) {
		g.Expect(r.Method).To(Equal(http.MethodGet))
		g.Expect(r.URL.Path).To(Equal("/v1/accounts/1234567/query"))
		g.Expect(r.URL.Query()).To(HaveLen(1))
		g.Expect(r.URL.Query().Get("nrql")).To(Equal(strings.TrimSpace(q) + " SINCE 120 seconds ago"))
		g.Expect(r.Header.Get("X-Query-Key")).To(Equal(queryKey))
		g.Expect(r.Header.Get("Accept")).To(Equal("application/json"))
	})
	v, err := query(t, srv, q)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(1.25))

	for body, want := range map[string]float64{
		countAnswer:                                    1523,
		`{"results":[{"average": 0.0421}]}`:            0.0421,
		`{"results":[{"percentiles": {"99": 180.5}}]}`: 180.5,
		`{"facets":[{"name":"podinfo","results":[{"count":7}]}],"totalResult":{"results":[{"count":7}]}}`: 7,
	} {
		v, err := query(t, server(t, http.StatusOK, body, nil), "SELECT x FROM y")
		g.Expect(err).NotTo(HaveOccurred(), body)
		g.Expect(v).To(Equal(want), body)
	}
}

// TestNewRelic_NoData: no result, a null value (an average of no events),
// no facet are ErrNoData.
func TestNewRelic_NoData(t *testing.T) {
	for name, body := range map[string]string{
		"no results":  `{"results": []}`,
		"null result": `{"results":[{"result": null}]}`,
		"null avg":    `{"results":[{"average": null}],"metadata":{"eventType":"Transaction"}}`,
		"no facets":   `{"facets": [], "totalResult": {"results":[{"count":0}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := query(t, server(t, http.StatusOK, body, nil), "SELECT average(duration) FROM Transaction")
			NewWithT(t).Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestNewRelic_Shapes: several facets are several series; several selected
// values, a time series and a string are errors that say what to change.
func TestNewRelic_Shapes(t *testing.T) {
	g := NewWithT(t)
	_, err := query(t, server(t, http.StatusOK, `{"facets":[{"name":"web","results":[{"count":1}]},{"name":"api","results":[{"count":2}]}]}`, nil), "SELECT count(*) FROM Transaction FACET appName")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"api", "web"}))
	_, err = query(t, server(t, http.StatusOK, `{"results":[{"count":1},{"average":2}]}`, nil), "SELECT count(*), average(duration) FROM Transaction")
	g.Expect(err).To(MatchError("the NRQL query selects 2 values (average, count): select one"))
	_, err = query(t, server(t, http.StatusOK, `{"timeSeries":[{"results":[{"count":1}]}]}`, nil), "SELECT count(*) FROM Transaction TIMESERIES")
	g.Expect(err).To(MatchError("the NRQL query returned a time series: remove TIMESERIES, a check needs one value"))
	_, err = query(t, server(t, http.StatusOK, `{"results":[{"latest":"v1.2.3"}]}`, nil), "SELECT latest(version) FROM Deployment")
	g.Expect(err).To(MatchError("the NRQL result is not a number: select one numeric value"))
}

// TestNewRelic_Errors: refusals quote New Relic's message, never the key.
func TestNewRelic_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"syntax", http.StatusBadRequest, `{"error": "NRQL Syntax Error: Error at line 1 position 8, unexpected 'FROMTransaction'"}`,
			"newrelic answered 400 Bad Request: NRQL Syntax Error: Error at line 1 position 8, unexpected 'FROMTransaction'"},
		{"bad key", http.StatusForbidden, `{"error": "Invalid query key ` + queryKey + `"}`, "newrelic answered 403 Forbidden: Invalid query key ***"},
		{"server error", http.StatusServiceUnavailable, `upstream connect error`, "newrelic answered 503 Service Unavailable: upstream connect error"},
		{"malformed", http.StatusOK, `{"results":[{"count":`, "malformed newrelic answer: unexpected end of JSON input"},
		{"oversized", http.StatusOK, `{"results":[],"pad":"` + strings.Repeat("x", 8<<20) + `"}`, "newrelic: the answer is larger than 8 MiB: narrow the query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := query(t, server(t, tc.code, tc.body, nil), "SELECT count(*) FROM Transaction")
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(queryKey))
		})
	}
}

// TestNewRelic_Config: missing keys are named, the account ID must be a
// number, the region picks the host.
func TestNewRelic_Config(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := New(ctx, metrics.ProviderConfig{Type: "newrelic", Secret: map[string][]byte{QueryKeySecretKey: []byte(queryKey)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key newrelic_account_id")))
	_, err = New(ctx, metrics.ProviderConfig{Type: "newrelic", Secret: map[string][]byte{AccountIDSecretKey: []byte(accountID)}})
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key newrelic_query_key")))
	_, err = New(ctx, metrics.ProviderConfig{Type: "newrelic", Secret: map[string][]byte{AccountIDSecretKey: []byte("../admin"), QueryKeySecretKey: []byte(queryKey)}})
	g.Expect(err).To(MatchError(ContainSubstring("the Secret's key newrelic_account_id must be the numeric New Relic account ID")))
	g.Expect(err.Error()).NotTo(ContainSubstring("../admin"))
	for region, want := range map[string]string{"": "https://insights-api.newrelic.com", "eu": "https://insights-api.eu.newrelic.com"} {
		p, err := New(ctx, metrics.ProviderConfig{Type: "newrelic", Region: region, Secret: secret()})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.(*Provider).client.Base()).To(Equal(want))
	}
	_, err = New(ctx, metrics.ProviderConfig{Type: "newrelic", Region: "ap", Secret: secret()})
	g.Expect(err).To(MatchError(ContainSubstring(`newrelic has no region "ap": set provider.region to us or eu, or provider.address`)))
}
