package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// recordingProvider is a provider type registered by a test: it records the
// configurations it was built from and answers with a programmed value.
type recordingProvider struct {
	mu      sync.Mutex
	built   []metrics.ProviderConfig
	queries []string
	value   float64
	err     error
}

func (r *recordingProvider) factory(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg.Secret != nil && len(cfg.Secret["apiKey"]) == 0 {
		return nil, fmt.Errorf("%w: the Secret has no key apiKey", metrics.ErrInvalidConfig)
	}
	r.built = append(r.built, cfg)
	return r, nil
}

func (r *recordingProvider) Query(_ context.Context, q string) (float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
	return r.value, r.err
}

func (r *recordingProvider) builds() []metrics.ProviderConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metrics.ProviderConfig(nil), r.built...)
}

// TestChecker_ProviderRegistry: a template is sent to the client of its
// provider type, built once from the template and its Secret and rebuilt
// only when the Secret changes; a backend other than Prometheus never gets
// --metrics-server; credentials never show in a result.
func TestChecker_ProviderRegistry(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "providers")
	g.Expect(err).NotTo(HaveOccurred())
	dd := &recordingProvider{value: 0.5}
	k := checker()
	k.DefaultAddress = "http://prometheus.example:9090"
	k.Providers = metrics.Providers{"prometheus": metrics.NewPrometheusProvider, "datadog": dd.factory}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dd", Namespace: ns},
		Data: map[string][]byte{"apiKey": []byte("dd-api-key-0123456789")}}
	g.Expect(env.Client.Create(ctx, secret)).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: "datadog",
			SecretRef: &corev1.LocalObjectReference{Name: "dd"}, Region: "eu-west-1"},
			Query: `sum:errors{service:{{ target }},env:{{ namespace }}}`}})).To(Succeed())
	c := canary("kubernetes")
	c.Namespace = ns
	m := sluicev1beta1.CanaryMetric{Name: "errors", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "errors"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("0.5"))
	g.Expect(res.Query).To(Equal("sum:errors{service:podinfo,env:" + ns + "}"))
	builds := dd.builds()
	g.Expect(builds).To(HaveLen(1))
	g.Expect(builds[0].Type).To(Equal("datadog"))
	g.Expect(builds[0].Address).To(BeEmpty(), "--metrics-server is a Prometheus; other backends use their own endpoint")
	g.Expect(builds[0].Region).To(Equal("eu-west-1"))
	g.Expect(string(builds[0].Secret["apiKey"])).To(Equal("dd-api-key-0123456789"))

	// The client is cached until the Secret changes.
	_ = k.Check(ctx, c, "kubernetes", m)
	g.Expect(dd.builds()).To(HaveLen(1))
	secret.Data["apiKey"] = []byte("dd-api-key-rotated-987")
	g.Expect(env.Client.Update(ctx, secret)).To(Succeed())
	g.Eventually(func() int { _ = k.Check(ctx, c, "kubernetes", m); return len(dd.builds()) }).Should(Equal(2))

	// A query error is an Error whose message holds no credential.
	dd.mu.Lock()
	dd.err = errors.New("403 Forbidden: key dd-api-key-rotated-987 is not valid")
	dd.mu.Unlock()
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(Equal("403 Forbidden: key *** is not valid"))

	// NaN from a provider is NoData, never a pass.
	dd.mu.Lock()
	dd.err, dd.value = nil, math.NaN()
	dd.mu.Unlock()
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckNoData), "%+v", res)

	// A Secret without the key the provider needs is InvalidProviderConfig, naming the key.
	secret.Data = map[string][]byte{"appKey": []byte("only-the-app-key")}
	g.Expect(env.Client.Update(ctx, secret)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonInvalidProviderConfig))
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Message).To(Equal("MetricTemplate provider datadog with Secret " + ns + "/dd: invalid provider configuration: the Secret has no key apiKey"))

	// A type the manager does not register is UnsupportedProvider, naming those it has.
	k.Providers = metrics.Providers{"prometheus": metrics.NewPrometheusProvider}
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Reason).To(Equal(metrics.ReasonUnsupportedProvider))
	g.Expect(res.Message).To(Equal("MetricTemplate " + ns + "/errors uses provider type datadog; this controller queries: prometheus"))
	g.Expect(res.Held).To(BeFalse(), "onError: Hold never holds a configuration that cannot work")
}

// TestChecker_PrometheusTemplateDefaultsToMetricsServer: a Prometheus
// template without an address uses the Canary's metrics server, and one
// without any address is a configuration error that says where to set it.
func TestChecker_PrometheusTemplateDefaultsToMetricsServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "providers")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "up", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: "prometheus"},
			Query: `vector(1)`}})).To(Succeed())
	c := canary("kubernetes")
	c.Namespace = ns
	m := sluicev1beta1.CanaryMetric{Name: "up", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "up"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(1.0)}}
	res := checker().Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)

	c.Spec.MetricsServer = ""
	res = checker().Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonInvalidProviderConfig))
	g.Expect(res.Message).To(ContainSubstring("no Prometheus address: set --metrics-server, spec.metricsServer or the MetricTemplate's provider.address"))
}

// TestNewPrometheusProvider_Secret: a Secret needs token, or username and
// password.
func TestNewPrometheusProvider_Secret(t *testing.T) {
	g := NewWithT(t)
	_, err := metrics.NewPrometheusProvider(context.Background(), metrics.ProviderConfig{Address: "http://127.0.0.1:9090", Secret: map[string][]byte{"apiKey": []byte("x")}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("neither the key token nor username and password")))
	p, err := metrics.NewPrometheusProvider(context.Background(), metrics.ProviderConfig{Address: "http://127.0.0.1:9090", Secret: map[string][]byte{"token": []byte("t0ken")}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).NotTo(BeNil())
	g.Expect(metrics.DefaultProviders().Types()).To(Equal([]string{"prometheus"}))
}
