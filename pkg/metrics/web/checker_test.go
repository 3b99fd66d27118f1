package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/sluice-cd/sluice/pkg/metrics/web"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestWeb_ThroughChecker: a web MetricTemplate on the API server, with a
// templated URL and body, a Secret and a JSONPath query: the Checker renders
// the URL and body per Canary, the request carries the token, and status
// shows the JSONPath but never the token.
func TestWeb_ThroughChecker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "web")
	g.Expect(err).NotTo(HaveOccurred())
	s := &server{status: http.StatusOK, body: `{"data": {"successRate": 99.7, "requests": 1200}}`}
	srv := httptest.NewServer(s)
	defer srv.Close()

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slo-token", Namespace: ns},
		Data: map[string][]byte{"token": []byte(token)}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "slo", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "web", Address: srv.URL + "/api/{{namespace}}/{{target}}/slo",
				Method: http.MethodPost, Body: `{"service": "{{ target }}", "window": "{{ interval }}"}`,
				SecretRef: &corev1.LocalObjectReference{Name: "slo-token"}},
			Query: "{$.data.{{ variables.field }}}",
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "slo", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "slo"},
		Interval: &metav1.Duration{Duration: 2 * time.Minute}, TemplateVariables: map[string]string{"field": "successRate"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second,
		Providers: metrics.Providers{"prometheus": metrics.NewPrometheusProvider, "web": web.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("99.7"))
	g.Expect(res.Query).To(Equal("{$.data.successRate}"))
	r := s.requests()
	g.Expect(r).To(HaveLen(1))
	g.Expect(r[0].method).To(Equal(http.MethodPost))
	g.Expect(r[0].path).To(Equal("/api/" + ns + "/podinfo/slo"))
	g.Expect(r[0].body).To(Equal(`{"service": "podinfo", "window": "2m"}`))
	g.Expect(r[0].header.Get("Authorization")).To(Equal("Bearer " + token))

	// Another Canary gets its own URL (and client).
	c2 := c.DeepCopy()
	c2.Name, c2.Spec.TargetRef.Name = "backend", "backend"
	g.Expect(k.Check(ctx, c2, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckPassed))
	g.Expect(s.requests()[1].path).To(Equal("/api/" + ns + "/backend/slo"))

	s.answer(http.StatusOK, `{"data": {}}`)
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))

	// The service echoing the credential back: the provider cuts it out (and
	// the Checker's redaction is a second line of defence).
	s.answer(http.StatusForbidden, `{"error": "token `+token+` has no access to podinfo"}`)
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
	g.Expect(res.Message).To(Equal("web answered HTTP 403: token *** has no access to podinfo"))

	// A template that renders badly is RenderFailed, naming the field.
	mt := &sluicev1beta1.MetricTemplate{}
	g.Expect(env.Client.Get(ctx, ctrlclient.ObjectKey{Namespace: ns, Name: "slo"}, mt)).To(Succeed())
	mt.Spec.Provider.Address = srv.URL + "/api/{{variables.missing}}"
	g.Expect(env.Client.Update(ctx, mt)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonRenderFailed))
	g.Expect(k.Check(ctx, c, "kubernetes", m).Message).To(HavePrefix("spec.provider.address: "))

	// The host is not a template: the Canary's variables would choose where
	// the token goes.
	g.Expect(env.Client.Get(ctx, ctrlclient.ObjectKey{Namespace: ns, Name: "slo"}, mt)).To(Succeed())
	mt.Spec.Provider.Address = "https://{{variables.field}}/api"
	g.Expect(env.Client.Update(ctx, mt)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Message }).Should(
		Equal("spec.provider.address: the host of a web address cannot be a template (a Canary's variables would choose where the credentials go): use templates in its path or query"))
	g.Expect(k.Check(ctx, c, "kubernetes", m).Reason).To(Equal(metrics.ReasonRenderFailed))
}
