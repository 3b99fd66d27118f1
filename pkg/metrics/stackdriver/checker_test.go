package stackdriver_test

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
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/stackdriver"
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

// TestChecker_Stackdriver runs Flagger's stackdriver template through the
// Checker: template and Secret (project, serviceAccountKey) from the API
// server, a token from the key's token_uri, the rendered MQL to
// timeSeries:query; no key material in any result.
func TestChecker_Stackdriver(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "stackdriver")
	g.Expect(err).NotTo(HaveOccurred())
	f, srv, secret := serviceAccount(t)
	f.answer(200, oneSeries)

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gcloud-sa", Namespace: ns}, Data: secret})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "not-found-percentage", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "stackdriver", Address: srv.URL,
				SecretRef: &corev1.LocalObjectReference{Name: "gcloud-sa"}},
			Query: `fetch k8s_container
| metric 'istio.io/service/server/request_count'
| filter (metric.destination_service_name == '{{ service }}-canary' && metric.destination_service_namespace == '{{ namespace }}')
| align rate({{ interval }})
| every {{ interval }}
| group_by [], [value_request_count_aggregate: aggregate(value.request_count)]`,
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "404s", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "not-found-percentage"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(0.3)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Providers: metrics.Providers{"stackdriver": stackdriver.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckFailed), "%+v", res)
	g.Expect(*res.Value).To(Equal("0.35"))
	g.Expect(res.Query).To(ContainSubstring(`metric.destination_service_name == 'podinfo-canary' && metric.destination_service_namespace == '` + ns + `'`))
	g.Expect(res.Query).To(ContainSubstring(`align rate(1m)`))
	g.Expect(f.check()).To(BeEmpty())

	f.answer(200, noSeries)
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))

	f.answer(403, denied)
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(ContainSubstring("HTTP 403 PERMISSION_DENIED"))
	g.Expect(res.Message + res.Query).NotTo(ContainSubstring("PRIVATE KEY"))
	g.Expect(res.Message + res.Query).NotTo(ContainSubstring(accessToken))

	// A Secret without project is InvalidProviderConfig naming the key.
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "no-project", Namespace: ns},
		Data: map[string][]byte{"serviceAccountKey": secret["serviceAccountKey"]}})).To(Succeed())
	mt := &sluicev1beta1.MetricTemplate{}
	g.Expect(env.Client.Get(ctx, keyOf(ns, "not-found-percentage"), mt)).To(Succeed())
	mt.Spec.Provider.SecretRef.Name = "no-project"
	g.Expect(env.Client.Update(ctx, mt)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonInvalidProviderConfig))
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Message).To(ContainSubstring("the Secret has no key project"))
	g.Expect(res.Message).NotTo(ContainSubstring("PRIVATE KEY"))
}

func keyOf(ns, name string) ctrlclient.ObjectKey {
	return ctrlclient.ObjectKey{Namespace: ns, Name: name}
}
