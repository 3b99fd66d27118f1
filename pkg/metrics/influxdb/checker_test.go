package influxdb_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
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
	"github.com/sluice-cd/sluice/pkg/metrics/influxdb"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var (
	env    *testenv.Environment
	influx *testenv.InfluxDB
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
	if influx, err = testenv.StartInfluxDB(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	influx.Stop()
	_ = env.Stop()
	os.Exit(code)
}

// TestInfluxDB_ThroughChecker: Flagger's influxdb MetricTemplate and its
// Secret (token, org) on the API server: the Checker renders the Flux
// query, the client sends it with the token, and status shows the query,
// the value and errors without the token.
func TestInfluxDB_ThroughChecker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "influxdb")
	g.Expect(err).NotTo(HaveOccurred())
	s, srv := start(t)
	s.answer(http.StatusOK, csvType, count)

	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "influx-token", Namespace: ns},
		Data: secret()})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "not-found", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{
			Provider: sluicev1beta1.MetricTemplateProvider{Type: "influxdb", Address: srv.URL + "/influx",
				Headers: map[string][]string{"X-Tenant": {"payments"}}, SecretRef: &corev1.LocalObjectReference{Name: "influx-token"}},
			Query: `from(bucket: "default")
  |> range(start: -{{ interval }})
  |> filter(fn: (r) => r["destination_workload_namespace"] == "{{ namespace }}")
  |> filter(fn: (r) => r["destination_workload"] == "{{ target }}")
  |> filter(fn: (r) => r["response_code"] == "404")
  |> count()
  |> yield(name: "count")`,
		}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "not-found", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "not-found"},
		Interval: &metav1.Duration{Duration: 2 * time.Minute}, ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(10.0)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second,
		Providers: metrics.Providers{"prometheus": metrics.NewPrometheusProvider, "influxdb": influxdb.New}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckFailed), "%+v", res)
	g.Expect(*res.Value).To(Equal("42"))
	g.Expect(res.Message).To(Equal("not-found 42 is outside [-Inf, 10]"))
	want := `from(bucket: "default")
  |> range(start: -2m)
  |> filter(fn: (r) => r["destination_workload_namespace"] == "` + ns + `")
  |> filter(fn: (r) => r["destination_workload"] == "podinfo")
  |> filter(fn: (r) => r["response_code"] == "404")
  |> count()
  |> yield(name: "count")`
	g.Expect(res.Query).To(Equal(want))
	g.Expect(s.requests()[0].Query).To(Equal(want))

	s.answer(http.StatusOK, csvType, noTable)
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))

	s.answer(http.StatusBadRequest, "application/json", `{"code":"invalid","message":"type error @3:6-3:70: missing object properties"}`)
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError))
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(Equal("influxdb answered HTTP 400: invalid: type error @3:6-3:70: missing object properties"))

	// A Secret without org is InvalidProviderConfig, naming the key.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "influx-token", Namespace: ns}, Data: map[string][]byte{"token": []byte(token)}}
	g.Expect(env.Client.Update(ctx, sec)).To(Succeed())
	g.Eventually(func() string { return k.Check(ctx, c, "kubernetes", m).Reason }).Should(Equal(metrics.ReasonInvalidProviderConfig))
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Message).To(ContainSubstring("the Secret has no key org"))
	g.Expect(res.Message).NotTo(ContainSubstring(token))
}
