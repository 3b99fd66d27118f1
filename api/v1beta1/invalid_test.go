package v1beta1_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const validCanary = `
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: invalid}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
    webhooks:
      - {name: load-test, url: "http://loadtester.test/"}
    alerts:
      - {name: on-call, providerRef: {name: slack}}
`

const validMetricTemplate = `
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: invalid}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: vector(1)
`

const validAlertProvider = `
apiVersion: sluice.dev/v1beta1
kind: AlertProvider
metadata: {name: invalid}
spec:
  type: slack
  address: https://hooks.slack.com/services/T/B/X
`

// mutation edits an object given as generic JSON.
type mutation func(obj map[string]any)

// set sets the value at a dotted path (list items by index), creating maps.
func set(path string, value any) mutation {
	return func(obj map[string]any) {
		parent, last := walk(obj, path)
		switch p := parent.(type) {
		case map[string]any:
			p[last] = value
		case []any:
			i, _ := strconv.Atoi(last)
			p[i] = value
		}
	}
}

// del removes the value at a dotted path.
func del(path string) mutation {
	return func(obj map[string]any) {
		parent, last := walk(obj, path)
		delete(parent.(map[string]any), last)
	}
}

func walk(obj map[string]any, path string) (any, string) {
	parts := strings.Split(path, ".")
	var cur any = obj
	for _, p := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[p]
			if !ok {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			i, _ := strconv.Atoi(p)
			cur = c[i]
		}
	}
	return cur, parts[len(parts)-1]
}

func yamlValue(s string) any {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

// invalidCase is an invalid manifest: a valid base, the mutations that
// break it, and what the API server's error must say: the field path and a
// message that tells what to fix.
type invalidCase struct {
	name    string
	base    string
	mutate  []mutation
	field   string
	message string
}

// invalidManifests are all the invalid manifests, by kind.
func invalidManifests() []invalidCase {
	return slices.Concat(invalidCanaryTopLevel, invalidCanaryService, invalidCanaryAnalysis, moreInvalidCanaries,
		invalidMetricTemplates, moreInvalidMetricTemplates, invalidAlertProviders, moreInvalidAlertProviders, invalidGitSyncs, invalidGitSyncPatches,
		invalidGitSyncCommitStatus, invalidGitSyncAlerts, invalidPipelines, invalidPipelineWebhooks, invalidGitSyncHelm,
		invalidGitSyncHelmHooks)
}

// TestInvalidManifests_Rejected sends invalid manifests to the real API server
// and checks that each is rejected with the field path and a message that says
// what to do.
func TestInvalidManifests_Rejected(t *testing.T) {
	tests := invalidManifests()
	if len(tests) < 150 {
		t.Fatalf("the table must hold at least 150 invalid manifests, it holds %d", len(tests))
	}
	ns := newNamespace(t)
	t.Run("bases are valid", func(t *testing.T) {
		for i, base := range []string{validCanary, validMetricTemplate, validAlertProvider, validGitSync, validPipeline, validHelmGitSync} {
			g := NewWithT(t)
			u := decode(t, base)
			u.SetName("valid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed())
		}
	})
	names := map[string]bool{}
	for i, tt := range tests {
		if names[tt.name] {
			t.Fatalf("two cases are named %q", tt.name)
		}
		names[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			u := decode(t, tt.base)
			for _, m := range tt.mutate {
				m(u.Object)
			}
			u.SetName("invalid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			err := env.Client.Create(context.Background(), u, strict)
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid manifest")
			t.Log(err)
			g.Expect(err.Error()).To(ContainSubstring(tt.field))
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}
}

func decode(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: runtime.DeepCopyJSON(m)}
}

// TestValidVariants_Accepted holds shapes close to the rules of the invalid
// table that the API server must still accept.
func TestValidVariants_Accepted(t *testing.T) {
	ns := newNamespace(t)
	variants := []struct {
		base   string
		mutate []mutation
	}{
		{validCanary, []mutation{set("spec.targetRef", yamlValue(`{apiVersion: v1, kind: Service, name: podinfo}`))}},
		{validCanary, []mutation{set("spec.targetRef", yamlValue(`{apiVersion: core/v1, kind: Service, name: podinfo}`))}},
		{validCanary, []mutation{set("spec.targetRef.kind", "DaemonSet")}},
		{validCanary, []mutation{set("spec.targetRef.kind", "StatefulSet")}},
		{validCanary, []mutation{set("spec.targetRef.kind", "StatefulSet"), set("spec.analysis.mirror", false)}},
		{validCanary, []mutation{set("spec.targetRef", yamlValue(`{apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}`))}},
		{validCanary, []mutation{set("spec.service.targetPort", "http-metrics"), set("spec.service.portName", "http-web")}},
		{validCanary, []mutation{set("spec.service.targetPort", 8080), set("spec.service.timeout", "0s")}},
		// What a Go client sends for an unset IntOrString.
		{validCanary, []mutation{set("spec.service.targetPort", 0)}},
		{validCanary, []mutation{set("spec.metricsServer", "http://prometheus.monitoring:9090/prom?x=1")}},
		{validCanary, []mutation{set("spec.analysis.mirror", true), set("spec.analysis.mirrorWeight", 30)}},
		{validCanary, []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 10), set("spec.analysis.mirror", true), set("spec.analysis.mirrorWeight", 50)}},
		{validCanary, []mutation{set("spec.analysis.stepWeightPromotion", 25)}},
		{validCanary, []mutation{set("spec.analysis.successLimit", 3), set("spec.analysis.historyLimit", 50), set("spec.analysis.metrics", yamlValue(`[{name: request-success-rate, thresholdRange: {min: 99}, inconclusiveRange: {min: 95, max: 99}, initialDelay: 5m}, {name: request-duration, threshold: 500, inconclusiveRange: {max: 800}, dryRun: true}]`))}},
		{validCanary, []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{1, 5, 10, 50})}},
		{validCanary, []mutation{set("spec.analysis.baseline", true)}},
		{validCanary, []mutation{del("spec.analysis.stepWeight"), del("spec.analysis.maxWeight"), set("spec.analysis.stepWeights", []any{5, 25, 50}), set("spec.analysis.baseline", true)}},
		{validCanary, []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 5), set("spec.analysis.baseline", false)}},
		{validCanary, []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: MUTUAL, credentialName: client-cert}}`))}},
		{validCanary, []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}}`))}},
		{validCanary, []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: ISTIO_MUTUAL}}`))}},
		{validCanary, []mutation{set("spec.analysis.webhooks", yamlValue(`[{name: a, url: "http://loadtester.test:8080/gate/approve?x=1"}, {name: b, type: pre-rollout, url: "https://[::1]:9443/"}]`))}},
		{validCanary, []mutation{set("spec.analysis.metrics", yamlValue(`[{name: request-success-rate, thresholdRange: {min: 99}}, {name: request-duration, thresholdRange: {max: 500}}, {name: errors, query: vector(0), thresholdRange: {max: 1}, interval: 30s}]`))}},
		{validCanary, []mutation{set("spec.analysis.metrics.0.threshold", 99), del("spec.analysis.metrics.0.thresholdRange")}},
		// Compared metrics: a tolerance, a test alone, a test with a tolerance
		// and an absolute guard, against the baseline when it runs.
		{validCanary, []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxIncrease: 12.5%, direction: LowerIsWorse}`))}},
		{validCanary, []mutation{del("spec.analysis.metrics.0.thresholdRange"), set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: MannWhitney}`))}},
		{validCanary, []mutation{set("spec.analysis.baseline", true), set("spec.analysis.metrics.0.compare", yamlValue(`{against: baseline, maxDelta: 0.5, test: MannWhitney, minSamples: 30, pValue: 0.01}`))}},
		{validHelmGitSync, []mutation{set("spec.helm.upgrade", yamlValue(`{remediation: {retries: 3}}`)), set("spec.helm.maxHistory", 20)}},
		{validHelmGitSync, []mutation{set("spec.helm.upgrade", yamlValue(`{remediation: {}}`)), set("spec.helm.maxHistory", 1)}},
		{validMetricTemplate, []mutation{set("spec.provider.secretRef", map[string]any{"name": "prom"}), set("spec.provider.region", "eu-west-1")}},
		{validMetricTemplate, []mutation{set("spec.provider.headers", yamlValue(`{X-Scope-OrgID: [tenant]}`))}},
		{validMetricTemplate, []mutation{set("spec.provider.type", "web"), set("spec.provider.address", "https://slo.example/api/{{namespace}}/{{target}}?w={{interval}}"), set("spec.provider.method", "POST"), set("spec.provider.body", `{"service": "{{ target }}"}`), set("spec.query", "{$.data.ok}")}},
		{validMetricTemplate, []mutation{set("spec.provider.type", "web"), set("spec.provider.method", "GET")}},
		{validAlertProvider, []mutation{del("spec.address"), set("spec.secretRef", map[string]any{"name": "slack"}), set("spec.proxy", "http://proxy.corp:3128")}},
		{validAlertProvider, []mutation{set("spec.type", "generic"), set("spec.address", "http://127.0.0.1:8080/hook")}},
	}
	for i, v := range variants {
		g := NewWithT(t)
		u := decode(t, v.base)
		for _, m := range v.mutate {
			m(u.Object)
		}
		u.SetName("variant-" + strconv.Itoa(i))
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed(), "variant %d", i)
	}
}
