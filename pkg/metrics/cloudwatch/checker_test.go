package cloudwatch_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/sluice-cd/sluice/pkg/metrics/cloudwatch"
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

// TestChecker_CloudWatch runs a Flagger-style CloudWatch MetricTemplate
// through the Checker: the template and its Secret come from the API
// server, the query is rendered, signed with the Secret's keys and sent to
// CloudWatch; the value is judged, and errors show no credential.
func TestChecker_CloudWatch(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "cloudwatch")
	g.Expect(err).NotTo(HaveOccurred())
	f := &fakeCloudWatch{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.answer(200, nil, toCBOR(t, oneResult))

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "aws", Namespace: ns}, Data: keys()})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "alb-errors", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "cloudwatch", Region: region, Address: srv.URL,
				SecretRef: &corev1.LocalObjectReference{Name: "aws"}},
			Query: `[{"Id": "e1", "Expression": "SELECT SUM(HTTPCode_Target_5XX_Count) FROM \"AWS/ApplicationELB\" WHERE TargetGroup = '{{ variables.targetGroup }}'", "Period": 60}]`,
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "alb-errors", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "alb-errors"},
		TemplateVariables: map[string]string{"targetGroup": "targetgroup/podinfo-canary/73e2d6bc24d8a067"},
		ThresholdRange:    &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(0.01)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Providers: metrics.Providers{"cloudwatch": cloudwatch.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("0.0025"))
	g.Expect(res.Query).To(ContainSubstring(`TargetGroup = 'targetgroup/podinfo-canary/73e2d6bc24d8a067'`))
	req := f.last()
	g.Expect(req["MetricDataQueries"]).NotTo(BeNil())

	// No datapoints: NoData, as the metric's noData policy says.
	f.answer(200, nil, toCBOR(t, noDatapoints))
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))

	// A CloudWatch error is QueryFailed with the vendor's message.
	f.answer(http.StatusForbidden, http.Header{"X-Amzn-Query-Error": {"AccessDenied;Sender"}},
		cborError(t, "AccessDeniedException", "message", "User: arn:aws:iam::123456789012:user/sluice is not authorized to perform: cloudwatch:GetMetricData"))
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(ContainSubstring("HTTP 403 AccessDenied: User: arn:aws:iam::123456789012:user/sluice is not authorized"))
	g.Expect(res.Message + res.Query).NotTo(ContainSubstring(secretAccessKey))
}
