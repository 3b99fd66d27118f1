package keptn_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/keptn"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var (
	env    *testenv.Environment
	scheme = runtime.NewScheme()
)

var (
	keptnMetricGVK = schema.GroupVersionKind{Group: "metrics.keptn.sh", Version: "v1", Kind: "KeptnMetric"}
	analysisGVK    = schema.GroupVersionKind{Group: "metrics.keptn.sh", Version: "v1", Kind: "Analysis"}
)

func TestMain(m *testing.M) {
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err = installKeptnCRDs(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// installKeptnCRDs installs KeptnMetric and Analysis (metrics.keptn.sh/v1,
// namespaced, with a status subresource, as Keptn's metrics-operator
// serves them). Keptn's Go module
// (github.com/keptn/lifecycle-toolkit/metrics-operator) is not served by
// the module proxy this project builds from (its releases are tagged
// metrics-operator-vX, which Go does not read as versions, and the proxy
// serves no pseudo-version of it), so hack/crds.sh cannot copy its CRD
// files; these stand-ins keep the group, version, kinds, scope and status
// subresource the provider depends on, and leave the schema open.
func installKeptnCRDs(ctx context.Context) error {
	open := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object", XPreserveUnknownFields: ptr.To(true)}}
	for _, k := range []struct{ kind, plural string }{{"KeptnMetric", "keptnmetrics"}, {"Analysis", "analyses"}} {
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + ".metrics.keptn.sh"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "metrics.keptn.sh", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: k.kind, ListKind: k.kind + "List", Plural: k.plural, Singular: k.plural[:len(k.plural)-2]},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: open,
					Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}}},
			},
		}
		if err := env.Client.Create(ctx, crd); err != nil {
			return fmt.Errorf("failed to create the %s CRD: %w", k.kind, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		u := &unstructured.UnstructuredList{}
		u.SetGroupVersionKind(analysisGVK.GroupVersion().WithKind("AnalysisList"))
		m := &unstructured.UnstructuredList{}
		m.SetGroupVersionKind(keptnMetricGVK.GroupVersion().WithKind("KeptnMetricList"))
		if env.Client.List(ctx, u) == nil && env.Client.List(ctx, m) == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the Keptn CRDs were not served in time")
}

// keptnMetric creates a KeptnMetric and, when status is not nil, writes
// its status as Keptn's metrics-operator does.
func keptnMetric(g *WithT, ns, name string, status map[string]any) {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"provider": map[string]any{"name": "my-prometheus-keptn-provider"}, "query": "sum(rate(http_requests_total[1m]))", "fetchIntervalSeconds": int64(10)}}}
	u.SetGroupVersionKind(keptnMetricGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
	if status != nil {
		u.Object["status"] = status
		g.Expect(env.Client.Status().Update(context.Background(), u)).To(Succeed())
	}
}

func provider(g *WithT) metrics.Provider {
	p, err := keptn.New(env.Client)(context.Background(), metrics.ProviderConfig{Type: "keptn"})
	g.Expect(err).NotTo(HaveOccurred())
	return p
}

// TestKeptn_KeptnMetric: status.value is the value; no value yet is no
// data; Keptn's error and a missing KeptnMetric are errors saying so.
func TestKeptn_KeptnMetric(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "keptn")
	g.Expect(err).NotTo(HaveOccurred())
	keptnMetric(g, ns, "response-time", map[string]any{"value": "0.125", "rawValue": "MC4xMjU=", "lastUpdated": "2026-12-07T04:00:00Z"})
	keptnMetric(g, ns, "fresh", nil)
	keptnMetric(g, ns, "broken", map[string]any{"errMsg": "client_error: client error: 422", "lastUpdated": "2026-12-07T04:00:00Z"})
	keptnMetric(g, ns, "word", map[string]any{"value": "healthy"})
	p := provider(g)

	v, err := p.Query(ctx, "keptnmetric/"+ns+"/response-time")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(0.125))
	v, err = p.Query(ctx, "KeptnMetrics/"+ns+"/response-time\n")
	g.Expect(err).NotTo(HaveOccurred(), "Flagger's plural and any case, a trailing newline of a YAML block")
	g.Expect(v).To(Equal(0.125))

	_, err = p.Query(ctx, "keptnmetric/"+ns+"/fresh")
	g.Expect(err).To(MatchError(metrics.ErrNoData))

	_, err = p.Query(ctx, "keptnmetric/"+ns+"/broken")
	g.Expect(err).To(MatchError("KeptnMetric " + ns + "/broken failed: client_error: client error: 422"))

	_, err = p.Query(ctx, "keptnmetric/"+ns+"/word")
	g.Expect(err).To(MatchError("KeptnMetric " + ns + `/word has the value "healthy", not a number`))

	_, err = p.Query(ctx, "keptnmetric/"+ns+"/missing")
	g.Expect(err).To(MatchError("KeptnMetric " + ns + "/missing not found"))
	g.Expect(err).NotTo(MatchError(metrics.ErrNoData))
}

// TestKeptn_Forbidden: without RBAC on metrics.keptn.sh the error says to
// check the role.
func TestKeptn_Forbidden(t *testing.T) {
	g := NewWithT(t)
	cfg, err := env.AddUser("no-keptn-rbac")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := ctrlclient.New(cfg, ctrlclient.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	p, err := keptn.New(c)(context.Background(), metrics.ProviderConfig{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), "keptnmetric/default/response-time")
	g.Expect(err).To(MatchError(ContainSubstring("KeptnMetric default/response-time: the controller may not access it (check the chart's engine role)")))
}

// keptnController plays Keptn's metrics-operator for Analyses: it checks
// each new Analysis' spec and completes it with the given verdict.
func keptnController(ctx context.Context, t *testing.T, ns string, pass bool, seen chan<- map[string]any) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(analysisGVK.GroupVersion().WithKind("AnalysisList"))
		if err := env.Client.List(ctx, list, ctrlclient.InNamespace(ns)); err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for i := range list.Items {
			a := &list.Items[i]
			if done[a.GetName()] {
				continue
			}
			done[a.GetName()] = true
			seen <- a.Object
			a.Object["status"] = map[string]any{"state": "Completed", "pass": pass, "warning": false,
				"timeframe": map[string]any{"from": "2026-12-07T04:00:00Z", "to": "2026-12-07T04:05:00Z"}, "raw": `{"objectiveResults":[]}`}
			if err := env.Client.Status().Update(ctx, a); err != nil && ctx.Err() == nil {
				t.Errorf("failed to complete the Analysis: %v", err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeptn_Analysis: an Analysis of the AnalysisDefinition is created with
// the query's timeframe and arguments; its verdict is 1 or 0; it is deleted
// afterwards, also when it never completes.
func TestKeptn_Analysis(t *testing.T) {
	for _, pass := range []bool{true, false} {
		t.Run(fmt.Sprintf("pass=%v", pass), func(t *testing.T) {
			g := NewWithT(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ns, err := env.Namespace(ctx, "keptn")
			g.Expect(err).NotTo(HaveOccurred())
			seen := make(chan map[string]any, 4)
			go keptnController(ctx, t, ns, pass, seen)

			qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
			defer qcancel()
			v, err := provider(g).Query(qctx, "analysis/"+ns+"/ed-my-proj-dev-svc1/5m/workload=podinfo;Project=Shop")
			g.Expect(err).NotTo(HaveOccurred())
			if pass {
				g.Expect(v).To(Equal(1.0))
			} else {
				g.Expect(v).To(Equal(0.0))
			}
			a := <-seen
			g.Expect(a["spec"]).To(Equal(map[string]any{
				"analysisDefinition": map[string]any{"name": "ed-my-proj-dev-svc1", "namespace": ns},
				"timeframe":          map[string]any{"recent": "5m"},
				"args":               map[string]any{"workload": "podinfo", "Project": "Shop"},
			}))
			md := a["metadata"].(map[string]any)
			g.Expect(md["labels"]).To(Equal(map[string]any{"app.kubernetes.io/managed-by": "sluice"}))
			g.Expect(md["name"]).To(HavePrefix("ed-my-proj-dev-svc1-"))
			g.Expect(analyses(ctx, ns)).To(BeZero(), "the Analysis is deleted once read")
		})
	}

	t.Run("never completes", func(t *testing.T) {
		g := NewWithT(t)
		ctx := context.Background()
		ns, err := env.Namespace(ctx, "keptn")
		g.Expect(err).NotTo(HaveOccurred())
		qctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		_, err = provider(g).Query(qctx, "analysis/"+ns+"/slo")
		g.Expect(err).To(MatchError(context.DeadlineExceeded))
		g.Expect(err).To(MatchError(ContainSubstring("did not complete in time (is Keptn's metrics-operator running?)")))
		g.Eventually(func() int { return analyses(ctx, ns) }).Should(BeZero(), "deleted after the deadline too")
	})
}

func analyses(ctx context.Context, ns string) int {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(analysisGVK.GroupVersion().WithKind("AnalysisList"))
	if err := env.Client.List(ctx, list, ctrlclient.InNamespace(ns)); err != nil {
		return -1
	}
	return len(list.Items)
}

// TestKeptn_BadQueries: queries that cannot be Flagger's keptn format say
// what it is.
func TestKeptn_BadQueries(t *testing.T) {
	g := NewWithT(t)
	p := provider(g)
	for q, want := range map[string]string{
		"response-time":              "the keptn query must be keptnmetric/<namespace>/<name>",
		"keptnmetric/ns":             "the keptn query must be keptnmetric/<namespace>/<name>",
		"prometheus/ns/x":            `the keptn query starts with "prometheus": use keptnmetric or analysis`,
		"keptnmetric/ns/x/2m":        "a keptnmetric query has no timeframe or arguments",
		"keptnmetric/Bad_NS/x":       `the keptn query names "Bad_NS", not a Kubernetes name`,
		"analysis/ns/x/five-minutes": `the keptn analysis timeframe "five-minutes" is not a duration such as 5m`,
		"analysis/ns/x/5m/workload":  `the keptn analysis argument "workload" is not key=value`,
		"analysis/ns/x/5m/a=b/extra": "the keptn query must be",
	} {
		_, err := p.Query(context.Background(), q)
		g.Expect(err).To(MatchError(ContainSubstring(want)), q)
	}
}

// TestKeptn_Config: the provider reads the cluster; an address or a Secret
// in the template is a mistake to fix.
func TestKeptn_Config(t *testing.T) {
	g := NewWithT(t)
	_, err := keptn.New(env.Client)(context.Background(), metrics.ProviderConfig{Address: "https://keptn.example"})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("remove provider.address")))
	_, err = keptn.New(env.Client)(context.Background(), metrics.ProviderConfig{Secret: map[string][]byte{"token": []byte("x")}})
	g.Expect(err).To(MatchError(ContainSubstring("remove provider.secretRef")))
}

// TestKeptn_ThroughChecker: Flagger's keptn MetricTemplate on the API server,
// rendered per Canary, reads the KeptnMetric of the Canary's namespace.
func TestKeptn_ThroughChecker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "keptn")
	g.Expect(err).NotTo(HaveOccurred())
	keptnMetric(g, ns, "podinfo-response-time", map[string]any{"value": "0.42"})
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "response-time", Namespace: ns},
		Spec: sluicev1beta1.MetricTemplateSpec{Provider: sluicev1beta1.MetricTemplateProvider{Type: "keptn"},
			Query: "keptnmetric/{{ namespace }}/{{ target }}-response-time\n"}})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}}}
	m := sluicev1beta1.CanaryMetric{Name: "response-time", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "response-time"},
		ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Max: ptr.To(0.5)}}
	k := &metrics.Checker{Client: env.Client, SecretReader: env.Client, Timeout: 5 * time.Second,
		Providers: metrics.Providers{"prometheus": metrics.NewPrometheusProvider, "keptn": keptn.New(env.Client)}}

	res := k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckPassed), "%+v", res)
	g.Expect(*res.Value).To(Equal("0.42"))
	g.Expect(res.Query).To(Equal("keptnmetric/" + ns + "/podinfo-response-time\n"))

	c.Spec.TargetRef.Name = "backend"
	res = k.Check(ctx, c, "kubernetes", m)
	g.Expect(res.Outcome).To(Equal(sluicev1beta1.CheckError), "%+v", res)
	g.Expect(res.Reason).To(Equal(metrics.ReasonQueryFailed))
	g.Expect(res.Message).To(Equal("KeptnMetric " + ns + "/backend-response-time not found"))

	keptnMetric(g, ns, "backend-response-time", nil)
	g.Expect(k.Check(ctx, c, "kubernetes", m).Outcome).To(Equal(sluicev1beta1.CheckNoData))
}
