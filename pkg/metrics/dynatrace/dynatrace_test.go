package dynatrace

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

const token = "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM"

// okAnswer has the documented shape of GET /api/v2/metrics/query
// (docs.dynatrace.com, Metrics API - GET metric data points) at resolution
// Inf: one value per series.
const okAnswer = `{
  "totalCount": 1,
  "nextPageKey": null,
  "resolution": "Inf",
  "result": [{
    "metricId": "builtin:service.errors.total.rate:avg",
    "dataPointCountRatio": 0.0000144,
    "dimensionCountRatio": 0.00005,
    "data": [{
      "dimensions": [],
      "dimensionMap": {},
      "timestamps": [1796618700000],
      "values": [1.8]
    }]
  }]
}`

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

func query(t *testing.T, address, selector string) (float64, error) {
	t.Helper()
	p, err := New(context.Background(), metrics.ProviderConfig{Type: "dynatrace", Address: address,
		Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	p.(*Provider).now = func() time.Time { return time.UnixMilli(1796618700000) }
	return p.Query(metrics.WithInterval(context.Background(), time.Minute), selector)
}

// TestDynatrace_Query: the documented request (path under the environment
// URL, metricSelector, resolution Inf, from/to in ms over ten intervals,
// Api-Token authorization, JSON accepted) and its value.
func TestDynatrace_Query(t *testing.T) {
	g := NewWithT(t)
	sel := `builtin:service.errors.total.rate:filter(eq("dt.entity.service","SERVICE-5B8D6C4B8B7A4D2F")):avg`
	srv := server(t, http.StatusOK, okAnswer, func(g Gomega, r *http.Request) {
		g.Expect(r.Method).To(Equal(http.MethodGet))
		g.Expect(r.URL.Path).To(Equal("/e/abc12345/api/v2/metrics/query"))
		g.Expect(r.URL.Query()).To(HaveLen(4))
		g.Expect(r.URL.Query().Get("metricSelector")).To(Equal(sel))
		g.Expect(r.URL.Query().Get("resolution")).To(Equal("Inf"))
		g.Expect(r.URL.Query().Get("from")).To(Equal("1796618100000"))
		g.Expect(r.URL.Query().Get("to")).To(Equal("1796618700000"))
		g.Expect(r.Header.Get("Authorization")).To(Equal("Api-Token " + token))
		g.Expect(r.Header.Get("Accept")).To(Equal("application/json"))
	})
	v, err := query(t, srv.URL+"/e/abc12345/", sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(1.8))
}

// TestDynatrace_NoData: no metric, no series, or only null values.
func TestDynatrace_NoData(t *testing.T) {
	for name, body := range map[string]string{
		"no result": `{"totalCount":0,"nextPageKey":null,"resolution":"Inf","result":[]}`,
		"no series": `{"totalCount":0,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"builtin:service.errors.total.rate:avg","dataPointCountRatio":0,"dimensionCountRatio":0,"data":[]}]}`,
		"null":      `{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"m","data":[{"dimensions":[],"dimensionMap":{},"timestamps":[1796618700000],"values":[null]}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := query(t, server(t, http.StatusOK, body, nil).URL, "m")
			NewWithT(t).Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestDynatrace_MultipleSeries: a selector split by a dimension, or several
// selectors, are several series, named.
func TestDynatrace_MultipleSeries(t *testing.T) {
	g := NewWithT(t)
	body := `{"totalCount":2,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"builtin:host.cpu.usage:avg","data":[
	  {"dimensions":["HOST-B"],"dimensionMap":{"dt.entity.host":"HOST-B"},"timestamps":[1],"values":[2]},
	  {"dimensions":["HOST-A"],"dimensionMap":{"dt.entity.host":"HOST-A"},"timestamps":[1],"values":[3]}]}]}`
	_, err := query(t, server(t, http.StatusOK, body, nil).URL, "builtin:host.cpu.usage:avg")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{
		`builtin:host.cpu.usage:avg{dt.entity.host="HOST-A"}`, `builtin:host.cpu.usage:avg{dt.entity.host="HOST-B"}`}))
	_, err = query(t, server(t, http.StatusOK, `{"result":[{"metricId":"b","data":[]},{"metricId":"a","data":[]}]}`, nil).URL, "b,a")
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"a", "b"}))
}

// TestDynatrace_Errors: refusals quote Dynatrace's message and constraint
// violations, never the token.
func TestDynatrace_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"constraint", http.StatusBadRequest, `{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[{"path":"metricSelector","message":"The metric key builtin:nope could not be found.","parameterLocation":"QUERY","location":null}]}}`,
			"dynatrace answered 400 Bad Request: Constraints violated. metricSelector: The metric key builtin:nope could not be found."},
		{"unauthorized", http.StatusUnauthorized, `{"error":{"code":401,"message":"Token Authentication failed"}}`, "dynatrace answered 401 Unauthorized: Token Authentication failed"},
		{"echoed token", http.StatusForbidden, `{"error":{"code":403,"message":"Token ` + token + ` is missing the required scope metrics.read"}}`,
			"dynatrace answered 403 Forbidden: Token *** is missing the required scope metrics.read"},
		{"server error", http.StatusInternalServerError, `{"error":{"code":500,"message":"Internal Server Error"}}`, "dynatrace answered 500 Internal Server Error: Internal Server Error"},
		{"gateway", http.StatusBadGateway, ``, "dynatrace answered 502 Bad Gateway"},
		{"malformed", http.StatusOK, `{"result":[{"metricId":`, "malformed dynatrace answer: unexpected end of JSON input"},
		{"oversized", http.StatusOK, `{"result":[],"x":"` + strings.Repeat("y", 8<<20) + `"}`, "dynatrace: the answer is larger than 8 MiB: narrow the query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := query(t, server(t, tc.code, tc.body, nil).URL, "m")
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}
}

// TestDynatrace_Config: the token key and the address are required.
func TestDynatrace_Config(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := New(ctx, metrics.ProviderConfig{Type: "dynatrace", Address: "https://abc12345.live.dynatrace.com", Secret: map[string][]byte{"token": []byte(token)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key dynatrace_token")))
	g.Expect(err.Error()).NotTo(ContainSubstring(token))
	_, err = New(ctx, metrics.ProviderConfig{Type: "dynatrace", Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("set provider.address to the environment URL, e.g. https://{environment-id}.live.dynatrace.com")))
	_, err = New(ctx, metrics.ProviderConfig{Type: "dynatrace", Address: "http://abc12345.live.dynatrace.com", Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
	g.Expect(err).To(MatchError(ContainSubstring("http:// would send the API key in clear text")))
}
