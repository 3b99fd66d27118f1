package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	"github.com/sluice-cd/sluice/pkg/router/istio"
	"github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var (
	env  *testenv.Environment
	prom *testenv.Prometheus
)

// target serves counters and histograms that grow by fixed amounts at each
// scrape, so every rate ratio and quantile has a known value:
//   - Istio: 99 of 100 requests succeed; latencies all in (25ms, 50ms] → p99 49.75ms
//   - Traefik (TraefikService): 8 of 10 succeed; latencies in (0.05s, 0.1s] → p99 99.5ms
//   - Gateway API through Traefik: 9 of 10 succeed
//   - kubernetes (app metrics by pod): 95 of 100 succeed
//   - two series of one metric, for the multiple-series error
type target struct {
	mu    sync.Mutex
	count int
}

func (t *target) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	t.mu.Lock()
	t.count++
	n := t.count
	t.mu.Unlock()
	istio := `reporter="destination",destination_workload_namespace="test",destination_workload="podinfo"`
	trf := `service="test-podinfo-canary-80@kubernetescrd"`
	gw := `service="httproute-test-podinfo-rule-0-svc-test-podinfo-canary-80@kubernetesgateway"`
	pod := `kubernetes_namespace="test",kubernetes_pod_name="podinfo-7d9f8b6c5-x2k4p"`
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	lines := []string{
		fmt.Sprintf(`istio_requests_total{%s,response_code="200"} %d`, istio, 99*n),
		fmt.Sprintf(`istio_requests_total{%s,response_code="503"} %d`, istio, 1*n),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="25"} 0`, istio),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="50"} %d`, istio, 100*n),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="+Inf"} %d`, istio, 100*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="200",method="GET",protocol="http"} %d`, trf, 8*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="500",method="GET",protocol="http"} %d`, trf, 2*n),
		fmt.Sprintf(`traefik_service_request_duration_seconds_bucket{%s,le="0.05"} 0`, trf),
		fmt.Sprintf(`traefik_service_request_duration_seconds_bucket{%s,le="0.1"} %d`, trf, 10*n),
		fmt.Sprintf(`traefik_service_request_duration_seconds_bucket{%s,le="+Inf"} %d`, trf, 10*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="200",method="GET",protocol="http"} %d`, gw, 9*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="502",method="GET",protocol="http"} %d`, gw, 1*n),
		fmt.Sprintf(`http_request_duration_seconds_count{%s,status="200"} %d`, pod, 95*n),
		fmt.Sprintf(`http_request_duration_seconds_count{%s,status="500"} %d`, pod, 5*n),
		// Gateway API implementations (gatewayapi_impl_test.go).
		fmt.Sprintf(`istio_requests_total{%s,response_code="200"} %d`, gwIstio, 97*n),
		fmt.Sprintf(`istio_requests_total{%s,response_code="503"} %d`, gwIstio, 3*n),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="10"} 0`, gwIstio),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="20"} %d`, gwIstio, 100*n),
		fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="+Inf"} %d`, gwIstio, 100*n),
		fmt.Sprintf(`hubble_http_requests_total{%s,status="200"} %d`, hubble, 96*n),
		fmt.Sprintf(`hubble_http_requests_total{%s,status="500"} %d`, hubble, 4*n),
		fmt.Sprintf(`hubble_http_request_duration_seconds_bucket{%s,le="0.05"} 0`, hubble),
		fmt.Sprintf(`hubble_http_request_duration_seconds_bucket{%s,le="0.1"} %d`, hubble, 100*n),
		fmt.Sprintf(`hubble_http_request_duration_seconds_bucket{%s,le="+Inf"} %d`, hubble, 100*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="200",method="GET",protocol="http"} %d`, gwRef, 7*n),
		fmt.Sprintf(`traefik_service_requests_total{%s,code="500",method="GET",protocol="http"} %d`, gwRef, 3*n),
		`two_series{a="1"} 1`,
		`two_series{a="2"} 2`,
	}
	_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func TestMain(m *testing.M) {
	if testenv.FuzzWorker() { // fuzz functions need no control plane (see FuzzWorker)
		os.Exit(m.Run())
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := httptest.NewServer(&target{})
	if prom, err = testenv.StartPrometheus(strings.TrimPrefix(srv.URL, "http://")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	prom.Stop()
	srv.Close()
	_ = env.Stop()
	os.Exit(code)
}

func canary(provider string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: sluicev1beta1.CanarySpec{
			Provider:      provider,
			MetricsServer: prom.URL,
			TargetRef:     sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
		},
	}
}

func checker() *metrics.Checker {
	r := router.NewRegistry()
	istio.Register(r)
	kubernetes.Register(r)
	traefik.Register(r)
	gatewayapi.Register(r)
	return &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second, Builtins: r}
}

func metric(name string, lo, hi *float64) sluicev1beta1.CanaryMetric {
	return sluicev1beta1.CanaryMetric{Name: name, Interval: &metav1.Duration{Duration: 10 * time.Second},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: lo, Max: hi}}
}

// eventually runs a check until the scrapes have produced data.
func eventually(g *WithT, f func() sluicev1beta1.CheckResult) sluicev1beta1.CheckResult {
	var res sluicev1beta1.CheckResult
	g.Eventually(func() sluicev1beta1.CheckOutcome {
		res = f()
		return res.Outcome
	}, 30*time.Second, 250*time.Millisecond).ShouldNot(Equal(sluicev1beta1.CheckNoData), "no data: %+v", &res)
	return res
}

// TestBuiltins_AgainstPrometheus runs every builtin query on the scraped series.
func TestBuiltins_AgainstPrometheus(t *testing.T) {
	tests := []struct {
		provider, metric string
		lo, hi           *float64
		want             string
		outcome          sluicev1beta1.CheckOutcome
	}{
		{"istio", "request-success-rate", ptr.To(99.0), nil, "99", sluicev1beta1.CheckPassed},
		{"istio", "request-duration", nil, ptr.To(500.0), "49.75", sluicev1beta1.CheckPassed},
		{"traefik", "request-success-rate", ptr.To(99.0), nil, "80", sluicev1beta1.CheckFailed},
		{"traefik", "request-duration", nil, ptr.To(50.0), "99.5", sluicev1beta1.CheckFailed},
		{"gatewayapi", "request-success-rate", ptr.To(85.0), nil, "90", sluicev1beta1.CheckPassed},
		{"kubernetes", "request-success-rate", ptr.To(99.0), nil, "95", sluicev1beta1.CheckFailed},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.metric, func(t *testing.T) {
			g := NewWithT(t)
			k := checker()
			res := eventually(g, func() sluicev1beta1.CheckResult {
				return k.Check(context.Background(), canary(tt.provider), tt.provider, metric(tt.metric, tt.lo, tt.hi))
			})
			g.Expect(res.Outcome).To(Equal(tt.outcome), "%+v", res)
			g.Expect(res.Value).NotTo(BeNil())
			g.Expect(*res.Value).To(Equal(tt.want))
			g.Expect(res.Query).To(ContainSubstring(`[10s]`))
			g.Expect(res.Message).To(ContainSubstring(tt.want))
		})
	}
}

func TestCheck_NoDataAndPolicies(t *testing.T) {
	g := NewWithT(t)
	k := checker()
	m := sluicev1beta1.CanaryMetric{Name: "absent", Query: `sum(nothing_here_total{namespace="{{ namespace }}"})`,
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}}
	res := k.Check(context.Background(), canary("istio"), "istio", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckNoData), "%+v", res)
	g.Expect(res.Query).To(Equal(`sum(nothing_here_total{namespace="test"})`))
	m.NoData = sluicev1beta1.PolicyPass
	g.Expect(k.Check(context.Background(), canary("istio"), "istio", m).Outcome).To(Equal(sluicev1beta1.CheckPassed))
	m.NoData = sluicev1beta1.PolicySkip
	g.Expect(k.Check(context.Background(), canary("istio"), "istio", m).Outcome).To(Equal(sluicev1beta1.CheckSkipped))
}

func TestCheck_TwoSeriesIsAnError(t *testing.T) {
	g := NewWithT(t)
	res := eventually(g, func() sluicev1beta1.CheckResult {
		return checker().Check(context.Background(), canary("istio"), "istio", sluicev1beta1.CanaryMetric{Name: "two", Query: "two_series"})
	})
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonMultipleSeries))
	g.Expect(res.Message).To(ContainSubstring(`a="1"`))
	g.Expect(res.Message).To(ContainSubstring(`a="2"`))
}

// TestCheck_TemplateWithBearerToken queries through a proxy that demands a
// bearer token, taken from the MetricTemplate's Secret, and checks that the
// token never shows in the result.
func TestCheck_TemplateWithBearerToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "metrics")
	g.Expect(err).NotTo(HaveOccurred())
	upstream, _ := url.Parse(prom.URL)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	var mu sync.Mutex
	var tenants []string
	guard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cr3t-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		tenants = append(tenants, r.Header.Get("X-Scope-OrgID"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer guard.Close()

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-auth", Namespace: ns},
		Data: map[string][]byte{"token": []byte("s3cr3t-token")}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "error-rate", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus", Address: guard.URL,
				Headers: map[string][]string{"X-Scope-OrgID": {"tenant-a"}}, SecretRef: &corev1.LocalObjectReference{Name: "prom-auth"}},
			Query: `100 - sum(rate(istio_requests_total{destination_workload_namespace="{{ variables.ns }}",destination_workload="{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload_namespace="{{ variables.ns }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100`,
		}})).To(Succeed())
	c := canary("istio")
	c.Namespace = ns
	m := sluicev1beta1.CanaryMetric{Name: "error-rate", Interval: &metav1.Duration{Duration: 10 * time.Second},
		TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "error-rate"}, TemplateVariables: map[string]string{"ns": "test"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(2.0)}}
	k := checker()
	res := eventually(g, func() sluicev1beta1.CheckResult { return k.Check(ctx, c, "istio", m) })
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("1"))
	mu.Lock()
	g.Expect(tenants).To(ContainElement("tenant-a"))
	mu.Unlock()

	// A wrong token is an Error that does not echo the credentials.
	secret := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, client(ns, "prom-auth"), secret)).To(Succeed())
	secret.Data["token"] = []byte("wrong-token-value")
	g.Expect(env.Client.Update(ctx, secret)).To(Succeed())
	res = k.Check(ctx, c, "istio", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message + res.Query).NotTo(ContainSubstring("wrong-token-value"))

	// Missing template, missing Secret and an unsupported provider name what is wrong.
	m.TemplateRef.Name = "nope"
	res = k.Check(ctx, c, "istio", m)
	g.Expect(res.Reason).To(Equal(metrics.ReasonTemplateNotFound))
	g.Expect(res.Message).To(Equal("MetricTemplate " + ns + "/nope not found"))
	g.Expect(env.Client.Delete(ctx, secret)).To(Succeed())
	m.TemplateRef.Name = "error-rate"
	res = k.Check(ctx, c, "istio", m)
	g.Expect(res.Reason).To(Equal(metrics.ReasonSecretNotFound), "%+v", res)
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "dd", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: "datadog"}, Query: "avg:x"}})).To(Succeed())
	m.TemplateRef.Name = "dd"
	res = k.Check(ctx, c, "istio", m)
	g.Expect(res.Reason).To(Equal(metrics.ReasonUnsupportedProvider))
	g.Expect(res.Message).To(ContainSubstring("uses provider type datadog; this controller queries: prometheus"))
}

// TestCheck_PrometheusDown is an Error, never a pass; onError: Hold holds.
func TestCheck_PrometheusDown(t *testing.T) {
	g := NewWithT(t)
	down, err := testenv.StartPrometheus()
	g.Expect(err).NotTo(HaveOccurred())
	c := canary("istio")
	c.Spec.MetricsServer = down.URL
	down.Stop()
	m := metric("request-success-rate", ptr.To(99.0), nil)
	res := checker().Check(context.Background(), c, "istio", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Held).To(BeFalse())
	m.OnError = sluicev1beta1.PolicyHold
	res = checker().Check(context.Background(), c, "istio", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Held).To(BeTrue())
}

func client(ns, name string) ctrlclient.ObjectKey {
	return ctrlclient.ObjectKey{Namespace: ns, Name: name}
}
