package graphite_test

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
	"github.com/sluice-cd/sluice/pkg/metrics/graphite"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var (
	env            *testenv.Environment
	graphiteServer *testenv.Graphite
)

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if graphiteServer, err = testenv.StartGraphite(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	graphiteServer.Stop()
	_ = env.Stop()
	os.Exit(code)
}

// TestGraphite_ThroughChecker: a Canary metric with a graphite MetricTemplate
// and its Secret on the API server is rendered, sent with basic auth, judged
// against its threshold, and the status shows the query but no credential.
func TestGraphite_ThroughChecker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "graphite")
	g.Expect(err).NotTo(HaveOccurred())
	s := &server{t: t, status: http.StatusOK, body: trailingNulls, auth: true}
	srv := httptest.NewServer(s)
	defer srv.Close()

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "graphite-basic-auth", Namespace: ns},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(password)}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "success-rate", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "graphite", Address: srv.URL + "/graphite",
				Headers:   map[string][]string{"X-Scope-OrgID": {"tenant-1"}},
				SecretRef: &corev1.LocalObjectReference{Name: "graphite-basic-auth"}},
			Query: "target=summarize(asPercent(sumSeries(stats.{{ namespace }}.{{ target }}.ok), sumSeries(stats.{{ namespace }}.{{ target }}.all)), '1min', 'avg')\n&from=-{{ interval }}",
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "success-rate", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "success-rate"},
		Interval: &metav1.Duration{Duration: 5 * time.Minute}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second,
		Providers: metrics.Providers{"prometheus": metrics.NewPrometheusProvider, "graphite": graphite.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckFailed), "%+v", res)
	g.Expect(*res.Value).To(Equal("98.25"))
	g.Expect(res.Message).To(Equal("success-rate 98.25 is outside [99, +Inf]"))
	g.Expect(res.Query).To(Equal("target=summarize(asPercent(sumSeries(stats." + ns + ".podinfo.ok), sumSeries(stats." + ns + ".podinfo.all)), '1min', 'avg')\n&from=-5m"))
	g.Expect(s.requests()).To(HaveLen(1))
	g.Expect(s.requests()[0].Get("from")).To(Equal("-5m"))

	s.answer(http.StatusOK, noSeries)
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckNoData), "%+v", res)

	s.answer(http.StatusBadRequest, "Invalid function: asPercnt")
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(Equal("graphite answered HTTP 400: Invalid function: asPercnt"))

	// A Secret without the password is InvalidProviderConfig, naming the key.
	sec := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, ctrlclient.ObjectKey{Namespace: ns, Name: "graphite-basic-auth"}, sec)).To(Succeed())
	sec.Data = map[string][]byte{"username": []byte(user)}
	g.Expect(env.Client.Update(ctx, sec)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonInvalidProviderConfig))
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Message).To(ContainSubstring("the Secret has no key password"))
	g.Expect(res.Message).NotTo(ContainSubstring(password))
}
