package web_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/web"
)

const token = "web-bearer-t0ken-0123456789"

// request is what the server saw.
type request struct {
	method, path, query, body string
	header                    http.Header
}

// server answers every request with a programmed status and body and
// records what it was sent.
type server struct {
	mu     sync.Mutex
	status int
	body   string
	got    []request
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, request{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, body: string(b), header: r.Header.Clone()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.status)
	_, _ = w.Write([]byte(s.body))
}

func (s *server) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.got...)
}

func start(t *testing.T, cfg metrics.ProviderConfig) (*server, metrics.Provider) {
	t.Helper()
	s := &server{status: http.StatusOK, body: `{}`}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg.Address = srv.URL + cfg.Address
	p, err := web.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// TestWeb_Get: a GET with the template's headers and the bearer token of the
// Secret; the JSONPath (Argo's braces or bare) selects the value.
func TestWeb_Get(t *testing.T) {
	g := NewWithT(t)
	s, p := start(t, metrics.ProviderConfig{Address: "/api/v1/slo?service=podinfo",
		Headers: http.Header{"X-Tenant": {"payments"}}, Secret: map[string][]byte{"token": []byte(token)}})
	s.answer(http.StatusOK, `{"data": {"ok": true, "successRate": 99.5, "p99": "0.25", "window": {"points": 12}}}`)
	for query, want := range map[string]float64{
		"{$.data.successRate}":  99.5,
		"$.data.successRate":    99.5,
		".data.p99":             0.25, // a numeric string
		"{$.data.ok}":           1,    // true is 1
		"{.data.window.points}": 12,
	} {
		v, err := p.Query(context.Background(), query)
		g.Expect(err).NotTo(HaveOccurred(), query)
		g.Expect(v).To(Equal(want), query)
	}
	r := s.requests()[0]
	g.Expect(r.method).To(Equal(http.MethodGet))
	g.Expect(r.path).To(Equal("/api/v1/slo"))
	g.Expect(r.query).To(Equal("service=podinfo"))
	g.Expect(r.body).To(BeEmpty())
	g.Expect(r.header.Get("Authorization")).To(Equal("Bearer " + token))
	g.Expect(r.header.Get("X-Tenant")).To(Equal("payments"))
	g.Expect(r.header.Get("Accept")).To(Equal("application/json"))
	g.Expect(r.header.Get("Content-Type")).To(BeEmpty())
}

// TestWeb_Post: a POST sends the body, as JSON when it is JSON, with basic
// auth from username and password.
func TestWeb_Post(t *testing.T) {
	g := NewWithT(t)
	s, p := start(t, metrics.ProviderConfig{Address: "/query", Method: http.MethodPost, Body: `{"service": "podinfo"}`,
		Secret: map[string][]byte{"username": []byte("reader"), "password": []byte("web-passw0rd")}})
	s.answer(http.StatusOK, `{"result": [{"value": 0.5}]}`)
	v, err := p.Query(context.Background(), "{$.result[0].value}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(0.5))
	r := s.requests()[0]
	g.Expect(r.method).To(Equal(http.MethodPost))
	g.Expect(r.body).To(Equal(`{"service": "podinfo"}`))
	g.Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
	user, pass, ok := (&http.Request{Header: r.header}).BasicAuth()
	g.Expect(ok).To(BeTrue())
	g.Expect(user + ":" + pass).To(Equal("reader:web-passw0rd"))

	// A body that is not JSON goes with no Content-Type unless the template sets one.
	s2, p2 := start(t, metrics.ProviderConfig{Address: "/query", Method: http.MethodPost, Body: "service=podinfo",
		Headers: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	s2.answer(http.StatusOK, `{"value": 1}`)
	_, err = p2.Query(context.Background(), "{$.value}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s2.requests()[0].header.Get("Content-Type")).To(Equal("application/x-www-form-urlencoded"))
	g.Expect(s2.requests()[0].body).To(Equal("service=podinfo"))
}

// TestWeb_NoData: a missing field, null, or an empty list is no data.
func TestWeb_NoData(t *testing.T) {
	for name, tc := range map[string]struct{ body, query string }{
		"missing field": {`{"data": {}}`, "{$.data.successRate}"},
		"null":          {`{"data": {"successRate": null}}`, "{$.data.successRate}"},
		"empty list":    {`{"items": []}`, "{$.items[*].value}"},
		"NaN string":    {`{"v": "NaN"}`, "{$.v}"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			s, p := start(t, metrics.ProviderConfig{})
			s.answer(http.StatusOK, tc.body)
			_, err := p.Query(context.Background(), tc.query)
			g.Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestWeb_MultipleValues: a JSONPath selecting several values names them
// and picks none.
func TestWeb_MultipleValues(t *testing.T) {
	g := NewWithT(t)
	s, p := start(t, metrics.ProviderConfig{})
	s.answer(http.StatusOK, `{"items": [{"value": 1}, {"value": 2.5}]}`)
	_, err := p.Query(context.Background(), "{$.items[*].value}")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"[0]=1", "[1]=2.5"}))
}

// TestWeb_Errors: non-2xx answers quote the service's message; malformed,
// oversized and non-numeric answers and bad JSONPaths are errors; none holds
// the token.
func TestWeb_Errors(t *testing.T) {
	tests := []struct {
		name, body, query, wantErr string
		status                     int
	}{
		{"4xx with a JSON error", `{"error": "unknown service podinfo"}`, "{$.v}", "web answered HTTP 404: unknown service podinfo", http.StatusNotFound},
		{"401 with a JSON message", `{"message": "invalid credentials"}`, "{$.v}", "web answered HTTP 401: invalid credentials", http.StatusUnauthorized},
		{"4xx echoing the token", `{"error": "token ` + token + ` is revoked"}`, "{$.v}", "web answered HTTP 401: token *** is revoked", http.StatusUnauthorized},
		{"5xx text", "upstream connect error or disconnect/reset before headers", "{$.v}", "web answered HTTP 503: upstream connect error", http.StatusServiceUnavailable},
		{"3xx is not a success", `{}`, "{$.v}", "web answered HTTP 304", http.StatusNotModified},
		{"malformed JSON", `{"v": 1`, "{$.v}", "web answered something other than JSON", http.StatusOK},
		{"oversized", `{"v": "` + strings.Repeat("x", 8<<20) + `"}`, "{$.v}", "web: the response is larger than 8 MiB", http.StatusOK},
		{"an object", `{"v": {"a": 1}}`, "{$.v}", `the JSONPath selects {"a":1}, not a number`, http.StatusOK},
		{"a word", `{"v": "healthy"}`, "{$.v}", `the JSONPath selects the string "healthy", not a number`, http.StatusOK},
		{"bad JSONPath", `{"v": 1}`, "{$.v[}", "the web query is not a JSONPath", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s, p := start(t, metrics.ProviderConfig{Secret: map[string][]byte{"token": []byte(token)}})
			s.answer(tt.status, tt.body)
			_, err := p.Query(context.Background(), tt.query)
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err).NotTo(MatchError(metrics.ErrNoData))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
			g.Expect(len(err.Error())).To(BeNumerically("<", 1024))
		})
	}
}

// TestWeb_Redirect: a redirect to another host is refused (it would carry
// the token there); one on the same host is followed.
func TestWeb_Redirect(t *testing.T) {
	g := NewWithT(t)
	other := &server{status: http.StatusOK, body: `{"v": 1}`}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(otherSrv.URL, "127.0.0.1", "localhost", 1)+"/v", http.StatusFound)
	})
	mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/v", http.StatusFound) })
	mux.HandleFunc("/v", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"v": 2}`)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	secret := map[string][]byte{"token": []byte(token)}

	p, err := web.New(context.Background(), metrics.ProviderConfig{Address: srv.URL + "/away", Secret: secret})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "{$.v}")
	g.Expect(err).To(MatchError(ContainSubstring("refusing a redirect to another host")))
	g.Expect(other.requests()).To(BeEmpty())

	p, err = web.New(context.Background(), metrics.ProviderConfig{Address: srv.URL + "/here", Secret: secret})
	g.Expect(err).NotTo(HaveOccurred())
	v, err := p.Query(context.Background(), "{$.v}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(2.0))
}

// TestWeb_TLS: an https URL with a self-signed certificate needs
// insecureSkipVerify.
func TestWeb_TLS(t *testing.T) {
	g := NewWithT(t)
	s := &server{status: http.StatusOK, body: `{"v": 3}`}
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	p, err := web.New(context.Background(), metrics.ProviderConfig{Address: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "{$.v}")
	g.Expect(err).To(MatchError(ContainSubstring("certificate")))
	p, err = web.New(context.Background(), metrics.ProviderConfig{Address: srv.URL, InsecureSkipVerify: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Query(context.Background(), "{$.v}")).To(Equal(3.0))
}

// TestWeb_Config: the URL is required and must be https off loopback, the
// Secret needs token or username and password, a body needs POST.
func TestWeb_Config(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metrics.ProviderConfig
		wantErr string
	}{
		{"no address", metrics.ProviderConfig{}, "the web provider needs spec.provider.address"},
		{"http off loopback", metrics.ProviderConfig{Address: "http://slo.monitoring/api"}, "the web address must be an https:// URL: http:// would send the credentials in clear text"},
		{"not a URL", metrics.ProviderConfig{Address: "slo.monitoring/api"}, "the web address \"slo.monitoring/api\" must be an https:// URL"},
		{"Secret without keys", metrics.ProviderConfig{Address: "https://slo.example", Secret: map[string][]byte{"apiKey": []byte(token)}},
			"the Secret has neither the key token nor the keys username and password"},
		{"Secret with a username only", metrics.ProviderConfig{Address: "https://slo.example", Secret: map[string][]byte{"username": []byte("u")}},
			"the Secret has neither the key token nor the keys username and password"},
		{"PUT", metrics.ProviderConfig{Address: "https://slo.example", Method: http.MethodPut}, `method must be GET or POST, not "PUT"`},
		{"body with GET", metrics.ProviderConfig{Address: "https://slo.example", Body: "{}"}, "sends a body with method POST only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := web.New(context.Background(), tt.cfg)
			g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}
}
