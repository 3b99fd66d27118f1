package graphite_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/graphite"
)

// The answers below are copied from graphite-web's render API documentation
// (docs/render_api.rst, "json" format): a list of {target, datapoints} with
// [value, timestamp] pairs, null for a missing value.
const (
	docAnswer = `[{
  "target": "entries",
  "datapoints": [
    [1.0, 1311836008],
    [2.0, 1311836009],
    [3.0, 1311836010],
    [5.0, 1311836011],
    [6.0, 1311836012]
  ]
}]`
	// The last points of a summarize() are null until the bucket fills.
	trailingNulls = `[{"target": "summarize(app.requests, \"1min\", \"avg\")", "datapoints": [[97.5, 1311836000], [98.25, 1311836060], [null, 1311836120]]}]`
	// A target that matches no metric: an empty list.
	noSeries = `[]`
	// A series whose every point is null (the metric exists, no data in range).
	allNulls = `[{"target": "app.requests", "datapoints": [[null, 1311836008], [null, 1311836009]]}]`
	// A wildcard target that matches two series.
	twoSeries = `[{"target": "app.web1.load", "datapoints": [[1.0, 1311836008]]}, {"target": "app.web2.load", "datapoints": [[2.0, 1311836008]]}]`
)

const (
	user     = "graphite-reader"
	password = "s3cret-graphite-passw0rd"
)

// server is a Graphite render endpoint that checks every request the way
// graphite-web reads it and answers with a programmed status and body.
type server struct {
	t      *testing.T
	mu     sync.Mutex
	status int
	body   string
	auth   bool // require basic auth
	got    []url.Values
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/graphite/render" {
		s.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if u, p, ok := r.BasicAuth(); s.auth && (!ok || u != user || p != password) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Unauthorized"))
		return
	}
	if got := r.Header.Get("X-Scope-OrgID"); got != "tenant-1" {
		s.t.Errorf("the template's header is missing: %q", got)
	}
	s.got = append(s.got, r.URL.Query())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.status)
	_, _ = w.Write([]byte(s.body))
}

func (s *server) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *server) requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.got...)
}

func start(t *testing.T, auth bool) (*server, metrics.Provider) {
	t.Helper()
	s := &server{t: t, status: http.StatusOK, body: docAnswer, auth: auth}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg := metrics.ProviderConfig{Type: "graphite", Address: srv.URL + "/graphite",
		Headers: http.Header{"X-Scope-OrgID": {"tenant-1"}}}
	if auth {
		cfg.Secret = map[string][]byte{"username": []byte(user), "password": []byte(password)}
	}
	p, err := graphite.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// TestGraphite_Query: the multi-line Flagger template becomes the render
// request Graphite documents (target, from, format=json, basic auth), and
// the value is the last non-null datapoint.
func TestGraphite_Query(t *testing.T) {
	g := NewWithT(t)
	s, p := start(t, true)
	query := `target=summarize(
      asPercent(
        sumSeries(stats.app.podinfo.outcome.{SUCCESS,REDIRECTION}.count),
        sumSeries(stats.app.podinfo.outcome.*.count)
      ),
      '1min',
      'avg'
    )
    &from=-5min`
	v, err := p.Query(context.Background(), query)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(6.0))
	reqs := s.requests()
	g.Expect(reqs).To(HaveLen(1))
	g.Expect(reqs[0]).To(Equal(url.Values{
		"target": {"summarize( asPercent( sumSeries(stats.app.podinfo.outcome.{SUCCESS,REDIRECTION}.count), sumSeries(stats.app.podinfo.outcome.*.count) ), '1min', 'avg' )"},
		"from":   {"-5min"},
		"format": {"json"},
	}))

	s.answer(http.StatusOK, trailingNulls)
	v, err = p.Query(context.Background(), "target=summarize(app.requests,'1min','avg')")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(98.25), "the last non-null datapoint")
}

// TestGraphite_NoData: no series, or only null points, is ErrNoData.
func TestGraphite_NoData(t *testing.T) {
	for name, body := range map[string]string{"no series": noSeries, "only nulls": allNulls,
		"no datapoints": `[{"target": "app.requests", "datapoints": []}]`} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			s, p := start(t, false)
			s.answer(http.StatusOK, body)
			_, err := p.Query(context.Background(), "target=app.requests")
			g.Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestGraphite_MultipleSeries: a wildcard matching two series names both and
// picks neither.
func TestGraphite_MultipleSeries(t *testing.T) {
	g := NewWithT(t)
	s, p := start(t, false)
	s.answer(http.StatusOK, twoSeries)
	_, err := p.Query(context.Background(), "target=app.*.load")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"app.web1.load", "app.web2.load"}))
}

// TestGraphite_Errors: HTTP errors quote Graphite's message, malformed and
// oversized answers are errors, and no error ever holds the password.
func TestGraphite_Errors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		query   string
		wantErr string
	}{
		{"bad target (graphite-web's 400 text)", http.StatusBadRequest, "Invalid function: sumSerie\n",
			"target=sumSerie(a.b)", "graphite answered HTTP 400: Invalid function: sumSerie"},
		{"error echoing the password", http.StatusForbidden, "password " + password + " rejected",
			"target=a.b", "graphite answered HTTP 403: password *** rejected"},
		{"server error", http.StatusInternalServerError, "<html><body><h1>Server Error (500)</h1></body></html>",
			"target=a.b", "graphite answered HTTP 500: <html><body><h1>Server Error (500)</h1></body></html>"},
		{"bad gateway without a body", http.StatusBadGateway, "", "target=a.b", "graphite answered HTTP 502"},
		{"malformed JSON", http.StatusOK, `[{"target": "a.b", "datapoints": [[1.0, 13`, "target=a.b",
			"graphite answered something other than a render JSON list of series"},
		{"not a pair", http.StatusOK, `[{"target": "a.b", "datapoints": [[1.0]]}]`, "target=a.b",
			"graphite series a.b: a datapoint is not a [value, timestamp] pair: [1.0]"},
		{"oversized", http.StatusOK, `[{"target": "a.b", "datapoints": [` + strings.Repeat("[1.0, 1311836008],", 500_000) + `[1.0, 1311836009]]}]`,
			"target=a.b", "graphite: the response is larger than 8 MiB"},
		{"no target", http.StatusOK, docAnswer, "from=-5min", "the graphite query has no target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s, p := start(t, true)
			s.answer(tt.status, tt.body)
			_, err := p.Query(context.Background(), tt.query)
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err).NotTo(MatchError(metrics.ErrNoData))
			g.Expect(err.Error()).NotTo(ContainSubstring(password))
		})
	}
}

// TestGraphite_Unauthorized: wrong credentials are Graphite's 401, and the
// message holds neither the user's password nor the one sent.
func TestGraphite_Unauthorized(t *testing.T) {
	g := NewWithT(t)
	s := &server{t: t, status: http.StatusOK, body: docAnswer, auth: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	p, err := graphite.New(context.Background(), metrics.ProviderConfig{Address: srv.URL + "/graphite/",
		Headers: http.Header{"X-Scope-OrgID": {"tenant-1"}},
		Secret:  map[string][]byte{"username": []byte(user), "password": []byte("wrong-passw0rd")}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "target=a.b")
	g.Expect(err).To(MatchError("graphite answered HTTP 401: Unauthorized"))
}

// TestGraphite_Config: the address is required, credentials need https
// off loopback, and a Secret needs both keys.
func TestGraphite_Config(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metrics.ProviderConfig
		wantErr string
	}{
		{"no address", metrics.ProviderConfig{}, "graphite has no default address"},
		{"no username", metrics.ProviderConfig{Address: "https://graphite.example", Secret: map[string][]byte{"password": []byte(password)}},
			"the Secret has no key username"},
		{"no password", metrics.ProviderConfig{Address: "https://graphite.example", Secret: map[string][]byte{"username": []byte(user)}},
			"the Secret has no key password"},
		{"credentials in clear text", metrics.ProviderConfig{Address: "http://graphite.monitoring",
			Secret: map[string][]byte{"username": []byte(user), "password": []byte(password)}},
			"the graphite address must be an https:// URL: http:// would send the credentials in clear text"},
		{"credentials in the address", metrics.ProviderConfig{Address: "https://u:" + password + "@graphite.example"},
			"the graphite address must not carry credentials"},
		{"not a URL", metrics.ProviderConfig{Address: "graphite.monitoring:8080"}, "must be an https:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := graphite.New(context.Background(), tt.cfg)
			g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring(password))
		})
	}
	// In-cluster Graphite without credentials, over http, as Flagger's example.
	_, err := graphite.New(context.Background(), metrics.ProviderConfig{Address: "http://graphite.monitoring"})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
}

// TestGraphite_Deadline: the Checker's per-query deadline ends a slow query.
func TestGraphite_Deadline(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p, err := graphite.New(context.Background(), metrics.ProviderConfig{Address: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 100_000_000) // 100ms
	defer cancel()
	_, err = p.Query(ctx, "target=a.b")
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(err.Error()).NotTo(ContainSubstring("target="), fmt.Sprintf("the URL is not repeated: %v", err))
}
