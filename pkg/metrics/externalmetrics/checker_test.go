package externalmetrics_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/externalmetrics"
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

// TestChecker_ExternalMetrics runs Flagger's externalmetrics template
// through the Checker: template and Secret from the API server, the query
// rendered with the Canary's namespace and target, the value judged; the
// token never shows.
func TestChecker_ExternalMetrics(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "externalmetrics")
	g.Expect(err).NotTo(HaveOccurred())
	f, srv := start(t)
	f.answer(200, oneItem)

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader", Namespace: ns},
		Data: map[string][]byte{"token": []byte(token)}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "error-rate", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "externalmetrics", Address: srv.URL,
				SecretRef: &corev1.LocalObjectReference{Name: "metrics-reader"}},
			Query: `{{ namespace }}/http_requests_error_rate?labelSelector=app%3D{{ target }}`,
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "error-rate", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "error-rate"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(5.0)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Providers: metrics.Providers{"externalmetrics": externalmetrics.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("2.5"))
	g.Expect(res.Query).To(Equal(ns + "/http_requests_error_rate?labelSelector=app%3Dpodinfo"))
	r := f.last(t)
	g.Expect(r.URL.Path).To(Equal("/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/http_requests_error_rate"))
	g.Expect(r.URL.Query().Get("labelSelector")).To(Equal("app=podinfo"))

	f.answer(200, noItems)
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))

	f.answer(403, forbidden)
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(ContainSubstring("is forbidden"))
	g.Expect(res.Message + res.Query).NotTo(ContainSubstring(token))
}
