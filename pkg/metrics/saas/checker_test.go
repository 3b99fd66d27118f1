package saas_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/datadog"
	"github.com/sluice-cd/sluice/pkg/metrics/dynatrace"
	"github.com/sluice-cd/sluice/pkg/metrics/newrelic"
	"github.com/sluice-cd/sluice/pkg/metrics/splunk"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The control plane is started by the first test that needs it, so that the
// client's unit tests run without one.
var (
	envOnce sync.Once
	env     *testenv.Environment
	envErr  error
)

func controlPlane(t *testing.T) *testenv.Environment {
	t.Helper()
	envOnce.Do(func() {
		scheme := runtime.NewScheme()
		_ = clientgoscheme.AddToScheme(scheme)
		_ = sluicev1beta1.AddToScheme(scheme)
		env, envErr = testenv.Start(scheme)
	})
	if envErr != nil {
		t.Fatalf("failed to start the control plane: %v", envErr)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// vendor is one SaaS API behind an httptest server: it checks the request
// the provider must send and answers with a programmed body.
type vendor struct {
	typ     string
	secret  map[string][]byte
	query   string
	auth    func(r *http.Request) bool
	window  func(r *http.Request) bool // the time window covers 10 intervals (or one, for NRQL)
	path    string
	answers map[string]string // by outcome: value, nodata, error
	mu      sync.Mutex
	answer  string
	code    int
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	answer, code := v.answer, v.code
	v.mu.Unlock()
	if r.URL.Path != v.path || !v.auth(r) || !v.window(r) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = fmt.Fprintf(w, `{"errors":["unexpected request %s %s"],"error":"unexpected request"}`, r.Method, r.URL)
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(answer))
}

func (v *vendor) set(code int, answer string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.code, v.answer = code, answer
}

// span is the time window of a request, from its start and end query
// parameters, in seconds (div converts from the API's unit).
func span(r *http.Request, start, end string, div int64) int64 {
	from, _ := strconv.ParseInt(r.URL.Query().Get(start), 10, 64)
	to, _ := strconv.ParseInt(r.URL.Query().Get(end), 10, 64)
	return (to - from) / div
}

// TestChecker_SaaSProviders: a Canary's metric, through the Checker, its
// MetricTemplate and Secret on a real API server, reaches each SaaS
// provider with the Secret's credentials and the metric's interval; the
// outcome is Passed, NoData or an Error that never shows a credential.
func TestChecker_SaaSProviders(t *testing.T) {
	env := controlPlane(t)
	ctx := context.Background()
	vendors := []*vendor{
		{
			typ:    "datadog",
			secret: map[string][]byte{datadog.APIKeySecretKey: []byte("dd-api-0a1b2c3d4e"), datadog.ApplicationKeySecretKey: []byte("dd-app-9f8e7d6c5b")},
			query:  "sum:trace.http.request.errors{service:{{ target }},env:{{ namespace }}}.as_count()",
			path:   "/api/v1/query",
			auth: func(r *http.Request) bool {
				return r.Header.Get("DD-API-KEY") == "dd-api-0a1b2c3d4e" && r.Header.Get("DD-APPLICATION-KEY") == "dd-app-9f8e7d6c5b"
			},
			window: func(r *http.Request) bool { return span(r, "from", "to", 1) == 300 },
			answers: map[string]string{
				"value":  `{"status":"ok","series":[{"expression":"x","scope":"*","pointlist":[[1,0.5]]}]}`,
				"nodata": `{"status":"ok","series":[]}`,
				"error":  `{"errors":["API key dd-api-0a1b2c3d4e is invalid"]}`,
			},
		},
		{
			typ:    "newrelic",
			secret: map[string][]byte{newrelic.AccountIDSecretKey: []byte("7654321"), newrelic.QueryKeySecretKey: []byte("NRIQ-secret-query-key")},
			query:  "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = '{{ target }}'",
			path:   "/v1/accounts/7654321/query",
			auth:   func(r *http.Request) bool { return r.Header.Get("X-Query-Key") == "NRIQ-secret-query-key" },
			window: func(r *http.Request) bool {
				return r.URL.Query().Get("nrql") == "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = 'podinfo' SINCE 30 seconds ago"
			},
			answers: map[string]string{
				"value":  `{"results":[{"result":0.5}]}`,
				"nodata": `{"results":[{"result":null}]}`,
				"error":  `{"error":"Invalid query key NRIQ-secret-query-key"}`,
			},
		},
		{
			typ:    "dynatrace",
			secret: map[string][]byte{dynatrace.TokenSecretKey: []byte("dt0c01.SECRETTOKEN")},
			query:  `builtin:service.errors.total.rate:filter(eq("service","{{ target }}")):avg`,
			path:   "/api/v2/metrics/query",
			auth:   func(r *http.Request) bool { return r.Header.Get("Authorization") == "Api-Token dt0c01.SECRETTOKEN" },
			window: func(r *http.Request) bool { return span(r, "from", "to", 1000) == 300 },
			answers: map[string]string{
				"value":  `{"totalCount":1,"resolution":"Inf","result":[{"metricId":"m","data":[{"dimensionMap":{},"timestamps":[1],"values":[0.5]}]}]}`,
				"nodata": `{"totalCount":0,"resolution":"Inf","result":[]}`,
				"error":  `{"error":{"code":401,"message":"Token dt0c01.SECRETTOKEN is not valid"}}`,
			},
		},
		{
			typ:    "splunk",
			secret: map[string][]byte{splunk.TokenSecretKey: []byte("sfx-SECRET-token-42")},
			query:  "data('requests.errors', filter=filter('app', '{{ target }}')).sum().publish()",
			path:   "/v2/signalflow/execute",
			auth: func(r *http.Request) bool {
				return r.Method == http.MethodPost && r.Header.Get("X-SF-Token") == "sfx-SECRET-token-42"
			},
			window: func(r *http.Request) bool {
				b, _ := io.ReadAll(r.Body)
				return span(r, "start", "stop", 1000) == 300 && string(b) == "data('requests.errors', filter=filter('app', 'podinfo')).sum().publish()"
			},
			answers: map[string]string{
				"value":  "event: data\ndata: {\"data\":[{\"tsId\":\"CgrT2EkAAAA\",\"value\":0.5}],\"logicalTimestampMs\":1}\n\n",
				"nodata": "event: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n",
				"error":  `{"code":401,"message":"token sfx-SECRET-token-42 is not valid"}`,
			},
		},
	}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second,
		Providers: metrics.Providers{"datadog": datadog.New, "newrelic": newrelic.New, "dynatrace": dynatrace.New, "splunk": splunk.New}}
	for _, v := range vendors {
		t.Run(v.typ, func(t *testing.T) {
			g := NewWithT(t)
			ns, err := env.Namespace(ctx, v.typ)
			g.Expect(err).NotTo(HaveOccurred())
			srv := httptest.NewServer(v)
			defer srv.Close()
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v.typ, Namespace: ns}, Data: v.secret}
			g.Expect(env.Client.Create(ctx, secret)).To(Succeed())
			g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: ns},
				Spec: sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: v.typ, Address: srv.URL,
					SecretRef: &corev1.LocalObjectReference{Name: v.typ}}, Query: v.query}})).To(Succeed())
			c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
				Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
			m := sluicev1beta1.CanaryMetric{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "errors"},
				Interval: &metav1.Duration{Duration: 30 * time.Second}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}}

			v.set(http.StatusOK, v.answers["value"])
			res := k.Check(ctx, c, "kubernetes", m)
			g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
			g.Expect(*res.Value).To(Equal("0.5"))

			v.set(http.StatusOK, v.answers["nodata"])
			res = k.Check(ctx, c, "kubernetes", m)
			g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckNoData), "%+v", res)

			v.set(http.StatusUnauthorized, v.answers["error"])
			res = k.Check(ctx, c, "kubernetes", m)
			g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
			g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
			g.Expect(res.Message).To(ContainSubstring(v.typ + " answered 401 Unauthorized: "))
			g.Expect(res.Message).To(ContainSubstring("***"))
			for _, s := range v.secret {
				if len(s) > 8 { // the account ID is not a credential
					g.Expect(res.Message).NotTo(ContainSubstring(string(s)))
					g.Expect(res.Query).NotTo(ContainSubstring(string(s)))
				}
			}

			// A Secret without the keys is InvalidProviderConfig, naming the first missing key.
			secret.Data = map[string][]byte{"token": []byte("unrelated")}
			g.Expect(env.Client.Update(ctx, secret)).To(Succeed())
			g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonInvalidProviderConfig))
			g.Expect(k.Check(ctx, c, "kubernetes", m).Message).To(MatchRegexp(`invalid provider configuration: the Secret has no key (datadog_api_key|newrelic_account_id|dynatrace_token|sf_token_key)`))
		})
	}
}
