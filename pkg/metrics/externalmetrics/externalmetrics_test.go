package externalmetrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/externalmetrics"
)

const token = "eyJhbGciOiJSUzI1NiJ9.external-metrics-reader-token"

// Answers in the documented ExternalMetricValueList shape (as KEDA and
// prometheus-adapter serve it) and the API server's Status errors.
const (
	oneItem = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},
  "items":[{"metricName":"http_requests_error_rate","metricLabels":{"app":"podinfo"},"timestamp":"2026-12-07T05:00:00Z","value":"2500m"}]}`
	noItems  = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[]}`
	twoItems = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[
  {"metricName":"http_requests_error_rate","metricLabels":{"app":"podinfo","pod":"b"},"timestamp":"2026-12-07T05:00:00Z","value":"1"},
  {"metricName":"http_requests_error_rate","metricLabels":{"app":"podinfo","pod":"a"},"timestamp":"2026-12-07T05:00:00Z","value":"4"}]}`
	notFound = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
  "message":"unable to fetch metrics from external metrics API: no metric http_requests_error_rate found","reason":"NotFound","code":404}`
	forbidden = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
  "message":"http_requests_error_rate.external.metrics.k8s.io is forbidden: User \"system:serviceaccount:sluice:sluice\" cannot list resource \"http_requests_error_rate\" in API group \"external.metrics.k8s.io\" in the namespace \"test\"","reason":"Forbidden","code":403}`
	internal = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: adapter unavailable","reason":"InternalError","code":500}`
)

// fakeMetricsAPI serves external.metrics.k8s.io/v1beta1 directly (the part
// of an aggregated API server the client talks to): it checks the path,
// the label selector, the Accept header and the bearer token.
type fakeMetricsAPI struct {
	mu       sync.Mutex
	token    string
	status   int
	body     string
	requests []*http.Request
	problems []string
}

func (f *fakeMetricsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/") {
		f.problems = append(f.problems, "unexpected "+r.Method+" "+r.URL.Path)
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		f.problems = append(f.problems, "Accept is "+r.Header.Get("Accept"))
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+f.token {
		f.problems = append(f.problems, "Authorization is "+got)
	}
	status := f.status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, f.body)
}

func (f *fakeMetricsAPI) answer(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeMetricsAPI) last(t *testing.T) *http.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) > 0 {
		t.Fatalf("bad requests: %v", f.problems)
	}
	if len(f.requests) == 0 {
		t.Fatal("no request")
	}
	return f.requests[len(f.requests)-1]
}

func start(t *testing.T) (*fakeMetricsAPI, *httptest.Server) {
	f := &fakeMetricsAPI{token: token}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func newProvider(t *testing.T, address string) metrics.Provider {
	t.Helper()
	p, err := externalmetrics.New(context.Background(), metrics.ProviderConfig{Type: "externalmetrics", Address: address,
		Secret: map[string][]byte{"token": []byte(token)}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestQuery_ExternalMetric: Flagger's query becomes the documented GET of
// the metric in its namespace with the label selector; the one item's
// quantity is the value.
func TestQuery_ExternalMetric(t *testing.T) {
	g := NewWithT(t)
	f, srv := start(t)
	p := newProvider(t, srv.URL)
	f.answer(200, oneItem)
	v, err := p.Query(context.Background(), "test/http_requests_error_rate?labelSelector=app%3Dpodinfo%2Cenv+in+%28prod%29")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(2.5))
	r := f.last(t)
	g.Expect(r.URL.Path).To(Equal("/apis/external.metrics.k8s.io/v1beta1/namespaces/test/http_requests_error_rate"))
	g.Expect(r.URL.Query().Get("labelSelector")).To(Equal("app=podinfo,env in (prod)"))

	// Without a namespace: default, as in Flagger; without a selector: none.
	_, err = p.Query(context.Background(), "queue_depth")
	g.Expect(err).NotTo(HaveOccurred())
	r = f.last(t)
	g.Expect(r.URL.Path).To(Equal("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth"))
	g.Expect(r.URL.Query().Has("labelSelector")).To(BeFalse())
}

// TestQuery_Outcomes: no item is NoData, two items name both, Status errors
// quote the API's message, malformed and oversized bodies fail; the token
// appears in none.
func TestQuery_Outcomes(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		noData     bool
		want       string
	}{
		{name: "no item", body: noItems, noData: true},
		{name: "two items", body: twoItems,
			want: "the query returned 2 series (http_requests_error_rateapp=podinfo,pod=a, http_requests_error_rateapp=podinfo,pod=b)"},
		{name: "404", status: 404, body: notFound, want: "no metric http_requests_error_rate found"},
		{name: "403", status: 403, body: forbidden, want: `cannot list resource \"http_requests_error_rate\" in API group \"external.metrics.k8s.io\"`},
		{name: "500", status: 500, body: internal, want: "Internal error occurred: adapter unavailable"},
		{name: "malformed", body: `{"kind":"ExternalMetricValueList","items":[`, want: "failed to read external metric http_requests_error_rate in namespace test"},
		{name: "oversized", body: `{"kind":"ExternalMetricValueList","items":[],"x":"` + strings.Repeat("x", 9<<20) + `"}`, want: "larger than 8 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f, srv := start(t)
			p := newProvider(t, srv.URL)
			f.answer(tt.status, tt.body)
			_, err := p.Query(context.Background(), "test/http_requests_error_rate?labelSelector=app%3Dpodinfo")
			g.Expect(err).To(HaveOccurred())
			if tt.noData {
				g.Expect(err).To(MatchError(metrics.ErrNoData))
			} else {
				g.Expect(errors.Is(err, metrics.ErrNoData)).To(BeFalse())
				g.Expect(strings.ReplaceAll(err.Error(), `"`, `\"`)).To(ContainSubstring(tt.want))
			}
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}
}

func TestParseQuery(t *testing.T) {
	for _, tt := range []struct{ query, ns, name, selector, wantErr string }{
		{query: "m", ns: "default", name: "m", selector: ""},
		{query: "/m", ns: "default", name: "m", selector: ""},
		{query: "prod/m?labelSelector=a%3Db", ns: "prod", name: "m", selector: "a=b"},
		{query: "a/b/c", wantErr: "too many slashes"},
		{query: "prod/", wantErr: "names no metric"},
		{query: "m?labelSelector=a%3D%3D%3Db%21", wantErr: "is not a label selector"},
		{query: "m?labelSelector=%zz", wantErr: "not URL-encoded"},
	} {
		g := NewWithT(t)
		ns, name, sel, err := externalmetrics.ParseQuery(tt.query)
		if tt.wantErr != "" {
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)), tt.query)
			continue
		}
		g.Expect(err).NotTo(HaveOccurred(), tt.query)
		g.Expect([]string{ns, name, sel.String()}).To(Equal([]string{tt.ns, tt.name, tt.selector}))
	}
}

// TestNew_OwnAPIServer: without an address the manager's own configuration
// is used (here KUBECONFIG), with its identity, or with the Secret's token
// in its place; a Secret without token and a plain-http address are
// configuration errors.
func TestNew_OwnAPIServer(t *testing.T) {
	g := NewWithT(t)
	// TLS: client-go applies a kubeconfig's credentials over https only.
	f := &fakeMetricsAPI{token: token}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	f.answer(200, oneItem)
	kubeconfig := t.TempDir() + "/kubeconfig"
	g.Expect(os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: controller-own-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)).To(Succeed())
	t.Setenv("KUBECONFIG", kubeconfig)

	f.mu.Lock()
	f.token = "controller-own-token"
	f.mu.Unlock()
	p, err := externalmetrics.New(context.Background(), metrics.ProviderConfig{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "test/http_requests_error_rate")
	g.Expect(err).NotTo(HaveOccurred())
	f.last(t)

	f.mu.Lock()
	f.token = token
	f.mu.Unlock()
	p, err = externalmetrics.New(context.Background(), metrics.ProviderConfig{Secret: map[string][]byte{"token": []byte(token)}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "test/http_requests_error_rate")
	g.Expect(err).NotTo(HaveOccurred())
	f.last(t)

	_, err = externalmetrics.New(context.Background(), metrics.ProviderConfig{Secret: map[string][]byte{"apiKey": []byte("x")}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key token")))
	_, err = externalmetrics.New(context.Background(), metrics.ProviderConfig{Address: "http://metrics.example.com"})
	g.Expect(err).To(MatchError(ContainSubstring("must be https://")))
}

// TestQuery_Deadline: an adapter that does not answer ends the query at the
// context's deadline (the library's List would wait for ever).
func TestQuery_Deadline(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	p := newProvider(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Query(ctx, "test/http_requests_error_rate")
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}
