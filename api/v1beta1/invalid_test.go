package v1beta1_test

import (
	"context"
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

// TestInvalidManifests_Rejected sends invalid manifests to the real API server
// and checks that each is rejected with the field path and a message that says
// what to do.
func TestInvalidManifests_Rejected(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		mutate  []mutation
		field   string
		message string
	}{
		// targetRef and top level
		{name: "targetRef missing", base: validCanary, mutate: []mutation{del("spec.targetRef")}, field: "spec.targetRef", message: "Required value"},
		{name: "targetRef kind unsupported", base: validCanary, mutate: []mutation{set("spec.targetRef.kind", "StatefulSet")}, field: "spec.targetRef.kind", message: `Unsupported value: "StatefulSet"`},
		{name: "targetRef name empty", base: validCanary, mutate: []mutation{set("spec.targetRef.name", "")}, field: "spec.targetRef.name", message: "at least 1 chars long"},
		{name: "provider unknown", base: validCanary, mutate: []mutation{set("spec.provider", "envoy")}, field: "spec.provider", message: `Unsupported value: "envoy"`},
		{name: "metricsServer not a URL", base: validCanary, mutate: []mutation{set("spec.metricsServer", "prometheus:9090")}, field: "spec.metricsServer", message: "must be an http:// or https:// URL"},
		{name: "progressDeadlineSeconds zero", base: validCanary, mutate: []mutation{set("spec.progressDeadlineSeconds", 0)}, field: "spec.progressDeadlineSeconds", message: "greater than or equal to 1"},
		{name: "unknown top-level field", base: validCanary, mutate: []mutation{set("spec.rollbackOnFailure", true)}, field: `unknown field "spec.rollbackOnFailure"`, message: "strict decoding error"},
		{name: "misspelled analysis field", base: validCanary, mutate: []mutation{set("spec.analysis.stepweight", 5)}, field: `unknown field "spec.analysis.stepweight"`, message: "strict decoding error"},
		{name: "autoscalerRef kind unsupported", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling.k8s.io/v1, kind: VerticalPodAutoscaler, name: podinfo}`))}, field: "spec.autoscalerRef.kind", message: "Unsupported value"},
		{name: "primaryScalerReplicas min above max", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo, primaryScalerReplicas: {minReplicas: 5, maxReplicas: 2}}`))}, field: "spec.autoscalerRef", message: "minReplicas must not exceed maxReplicas"},
		{name: "ingressRef wrong kind", base: validCanary, mutate: []mutation{set("spec.ingressRef", yamlValue(`{apiVersion: v1, kind: Service, name: podinfo}`))}, field: "spec.ingressRef", message: "spec.ingressRef.kind must be Ingress"},

		// service
		{name: "service missing", base: validCanary, mutate: []mutation{del("spec.service")}, field: "spec.service", message: "Required value"},
		{name: "service port missing", base: validCanary, mutate: []mutation{del("spec.service.port")}, field: "spec.service.port", message: "Required value"},
		{name: "service port zero", base: validCanary, mutate: []mutation{set("spec.service.port", 0)}, field: "spec.service.port", message: "greater than or equal to 1"},
		{name: "service port too high", base: validCanary, mutate: []mutation{set("spec.service.port", 70000)}, field: "spec.service.port", message: "less than or equal to 65535"},
		{name: "service name not a DNS label", base: validCanary, mutate: []mutation{set("spec.service.name", "Pod_Info")}, field: "spec.service.name", message: "should match"},
		{name: "service name too long for -primary", base: validCanary, mutate: []mutation{set("spec.service.name", strings.Repeat("a", 56))}, field: "spec.service.name", message: "may not be more than 55"},
		{name: "service timeout not a duration", base: validCanary, mutate: []mutation{set("spec.service.timeout", "30 seconds")}, field: "spec.service.timeout", message: "should match"},
		{name: "service trafficDistribution unknown", base: validCanary, mutate: []mutation{set("spec.service.trafficDistribution", "Anywhere")}, field: "spec.service.trafficDistribution", message: "Unsupported value"},
		{name: "delegation with hosts", base: validCanary, mutate: []mutation{set("spec.service.delegation", true), set("spec.service.hosts", []any{"app.example.com"})}, field: "spec.service", message: "remove spec.service.hosts and spec.service.gateways"},
		{name: "string match with two operators", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{uri: {exact: /a, prefix: /}}]`))}, field: "spec.service.match[0].uri", message: "at most one of exact, prefix, suffix or regex"},
		{name: "rewrite type unknown", base: validCanary, mutate: []mutation{set("spec.service.rewrite", yamlValue(`{uri: /, type: Replace}`))}, field: "spec.service.rewrite.type", message: "Unsupported value"},
		{name: "gatewayRef without name", base: validCanary, mutate: []mutation{set("spec.service.gatewayRefs", yamlValue(`[{namespace: gateway}]`))}, field: "spec.service.gatewayRefs[0].name", message: "Required value"},
		{name: "retries perTryTimeout not a duration", base: validCanary, mutate: []mutation{set("spec.service.retries", yamlValue(`{attempts: 3, perTryTimeout: soon}`))}, field: "spec.service.retries.perTryTimeout", message: "should match"},
		{name: "load balancer simple and consistentHash", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}`))}, field: "spec.service.trafficPolicy.loadBalancer", message: "either simple or consistentHash, not both"},
		{name: "consistentHash with two keys", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {consistentHash: {useSourceIp: true, httpHeaderName: x-user}}}`))}, field: "spec.service.trafficPolicy.loadBalancer.consistentHash", message: "exactly one of httpHeaderName"},
		{name: "tls mode unknown", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: STRICT}}`))}, field: "spec.service.trafficPolicy.tls.mode", message: "Unsupported value"},

		// analysis
		{name: "analysis missing", base: validCanary, mutate: []mutation{del("spec.analysis")}, field: "spec.analysis", message: "Required value"},
		{name: "interval not a duration", base: validCanary, mutate: []mutation{set("spec.analysis.interval", "1 minute")}, field: "spec.analysis.interval", message: "should match"},
		{name: "interval in days", base: validCanary, mutate: []mutation{set("spec.analysis.interval", "1d")}, field: "spec.analysis.interval", message: "should match"},
		{name: "threshold zero", base: validCanary, mutate: []mutation{set("spec.analysis.threshold", 0)}, field: "spec.analysis.threshold", message: "greater than or equal to 1"},
		{name: "stepWeight zero", base: validCanary, mutate: []mutation{set("spec.analysis.stepWeight", 0)}, field: "spec.analysis.stepWeight", message: "greater than or equal to 1"},
		{name: "stepWeight above 100", base: validCanary, mutate: []mutation{set("spec.analysis.stepWeight", 101), set("spec.analysis.maxWeight", 100)}, field: "spec.analysis.stepWeight", message: "less than or equal to 100"},
		{name: "maxWeight above 100", base: validCanary, mutate: []mutation{set("spec.analysis.maxWeight", 150)}, field: "spec.analysis.maxWeight", message: "less than or equal to 100"},
		{name: "maxWeight below stepWeight", base: validCanary, mutate: []mutation{set("spec.analysis.maxWeight", 5)}, field: "spec.analysis", message: "maxWeight must be greater than or equal to stepWeight"},
		{name: "stepWeights descending", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{10, 5})}, field: "spec.analysis.stepWeights", message: "strictly ascending"},
		{name: "stepWeights repeated", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{5, 5, 10})}, field: "spec.analysis.stepWeights", message: "strictly ascending"},
		{name: "stepWeights rung zero", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{0, 10})}, field: "spec.analysis.stepWeights[0]", message: "greater than or equal to 1"},
		{name: "stepWeights rung above 100", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{10, 120})}, field: "spec.analysis.stepWeights[1]", message: "less than or equal to 100"},
		{name: "stepWeight and stepWeights", base: validCanary, mutate: []mutation{set("spec.analysis.stepWeights", []any{10, 20})}, field: "spec.analysis", message: "takes stepWeight or stepWeights, not both"},
		{name: "no strategy", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight")}, field: "spec.analysis", message: "needs a strategy: set iterations"},
		{name: "iterations and stepWeight", base: validCanary, mutate: []mutation{set("spec.analysis.iterations", 5)}, field: "spec.analysis", message: "select different strategies"},
		{name: "match without iterations", base: validCanary, mutate: []mutation{set("spec.analysis.match", yamlValue(`[{headers: {x-canary: {exact: insider}}}]`))}, field: "spec.analysis", message: "requires spec.analysis.iterations"},
		{name: "mirrorWeight above 100", base: validCanary, mutate: []mutation{set("spec.analysis.mirrorWeight", 101)}, field: "spec.analysis.mirrorWeight", message: "less than or equal to 100"},
		{name: "stepWeightPromotion negative", base: validCanary, mutate: []mutation{set("spec.analysis.stepWeightPromotion", -1)}, field: "spec.analysis.stepWeightPromotion", message: "greater than or equal to 0"},
		{name: "primaryReadyThreshold above 100", base: validCanary, mutate: []mutation{set("spec.analysis.primaryReadyThreshold", 150)}, field: "spec.analysis.primaryReadyThreshold", message: "less than or equal to 100"},
		{name: "canaryReadyThreshold negative", base: validCanary, mutate: []mutation{set("spec.analysis.canaryReadyThreshold", -5)}, field: "spec.analysis.canaryReadyThreshold", message: "greater than or equal to 0"},

		// session affinity
		{name: "session cookies with the same name", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: c, primaryCookieName: c}`))}, field: "spec.analysis.sessionAffinity", message: "primaryCookieName must differ from cookieName"},
		{name: "session affinity without cookieName", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{maxAge: 60}`))}, field: "spec.analysis.sessionAffinity.cookieName", message: "Required value"},
		{name: "session cookie name with a space", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: "my cookie"}`))}, field: "spec.analysis.sessionAffinity.cookieName", message: "should match"},
		{name: "session sameSite unknown", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: c, sameSite: Sometimes}`))}, field: "spec.analysis.sessionAffinity.sameSite", message: "Unsupported value"},
		{name: "session affinity with blue/green", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 5), set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: c}`))}, field: "spec", message: "sessionAffinity works with the progressive canary strategy only"},

		// metrics
		{name: "metric neither builtin nor template nor query", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.name", "error-rate")}, field: "spec.analysis.metrics[0]", message: "must name a builtin (request-success-rate, request-duration) or set templateRef or query"},
		{name: "metric with templateRef and query", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.templateRef", yamlValue(`{name: t}`)), set("spec.analysis.metrics.0.query", "vector(1)")}, field: "spec.analysis.metrics[0]", message: "templateRef or query, not both"},
		{name: "thresholdRange min above max", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.thresholdRange", yamlValue(`{min: 99, max: 90}`))}, field: "spec.analysis.metrics[0].thresholdRange", message: "min must be less than or equal to thresholdRange.max"},
		{name: "metric interval not a duration", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.interval", "5 minutes")}, field: "spec.analysis.metrics[0].interval", message: "should match"},
		{name: "metric templateRef without name", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.templateRef", yamlValue(`{namespace: sluice}`))}, field: "spec.analysis.metrics[0].templateRef.name", message: "Required value"},
		{name: "metric without name", base: validCanary, mutate: []mutation{del("spec.analysis.metrics.0.name")}, field: "spec.analysis.metrics[0].name", message: "Required value"},

		// webhooks and alerts
		{name: "webhook type unknown", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.type", "pre")}, field: "spec.analysis.webhooks[0].type", message: `Unsupported value: "pre"`},
		{name: "webhook url without scheme", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.url", "loadtester.test/")}, field: "spec.analysis.webhooks[0].url", message: "must be an http:// or https:// URL"},
		{name: "webhook timeout not a duration", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.timeout", "10 seconds")}, field: "spec.analysis.webhooks[0].timeout", message: "should match"},
		{name: "webhook retries negative", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.retries", -1)}, field: "spec.analysis.webhooks[0].retries", message: "greater than or equal to 0"},
		{name: "webhook without url", base: validCanary, mutate: []mutation{del("spec.analysis.webhooks.0.url")}, field: "spec.analysis.webhooks[0].url", message: "Required value"},
		{name: "alert severity unknown", base: validCanary, mutate: []mutation{set("spec.analysis.alerts.0.severity", "critical")}, field: "spec.analysis.alerts[0].severity", message: "Unsupported value"},
		{name: "alert without providerRef", base: validCanary, mutate: []mutation{del("spec.analysis.alerts.0.providerRef")}, field: "spec.analysis.alerts[0].providerRef", message: "Required value"},

		// MetricTemplate
		{name: "MetricTemplate provider type unknown", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "grafana")}, field: "spec.provider.type", message: "Unsupported value"},
		{name: "MetricTemplate without query", base: validMetricTemplate, mutate: []mutation{del("spec.query")}, field: "spec.query", message: "Required value"},
		{name: "MetricTemplate address not a URL", base: validMetricTemplate, mutate: []mutation{set("spec.provider.address", "prometheus:9090")}, field: "spec.provider.address", message: "must be an http:// or https:// URL"},
		{name: "MetricTemplate unknown field", base: validMetricTemplate, mutate: []mutation{set("spec.provider.token", "s3cr3t")}, field: `unknown field "spec.provider.token"`, message: "strict decoding error"},

		// AlertProvider
		{name: "AlertProvider type unknown", base: validAlertProvider, mutate: []mutation{set("spec.type", "pagerduty")}, field: "spec.type", message: "Unsupported value"},
		{name: "AlertProvider without address or secretRef", base: validAlertProvider, mutate: []mutation{del("spec.address")}, field: "spec", message: "needs spec.address or spec.secretRef"},
		{name: "AlertProvider address not a URL", base: validAlertProvider, mutate: []mutation{set("spec.address", "hooks.slack.com/services/T/B/X")}, field: "spec.address", message: "must be an http:// or https:// URL"},
	}
	if len(tests) < 40 {
		t.Fatalf("the table must hold at least 40 invalid manifests, it holds %d", len(tests))
	}

	ns := newNamespace(t)
	t.Run("bases are valid", func(t *testing.T) {
		for i, base := range []string{validCanary, validMetricTemplate, validAlertProvider} {
			g := NewWithT(t)
			u := decode(t, base)
			u.SetName("valid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed())
		}
	})
	for i, tt := range tests {
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
