package v1beta1_test

import (
	"strconv"
	"strings"
)

// The invalid Canaries of TestInvalidManifests_Rejected.

var invalidCanaryTopLevel = []invalidCase{
	// targetRef and top level
	{name: "targetRef missing", base: validCanary, mutate: []mutation{del("spec.targetRef")}, field: "spec.targetRef", message: "Required value"},
	{name: "targetRef kind unsupported", base: validCanary, mutate: []mutation{set("spec.targetRef.kind", "ReplicaSet")}, field: "spec.targetRef.kind", message: `Unsupported value: "ReplicaSet"`},
	{name: "StatefulSet with traffic mirroring", base: validCanary, mutate: []mutation{set("spec.targetRef.kind", "StatefulSet"), set("spec.analysis.mirror", true)}, field: "spec", message: "spec.analysis.mirror is not supported for a StatefulSet target"},
	{name: "StatefulSet with apiVersion apps/v1beta2", base: validCanary, mutate: []mutation{set("spec.targetRef", yamlValue(`{apiVersion: apps/v1beta2, kind: StatefulSet, name: podinfo}`))}, field: "spec.targetRef", message: "must be apps/v1 for a Deployment, a DaemonSet or a StatefulSet"},
	{name: "targetRef name empty", base: validCanary, mutate: []mutation{set("spec.targetRef.name", "")}, field: "spec.targetRef.name", message: "at least 1 chars long"},
	{name: "provider unknown", base: validCanary, mutate: []mutation{set("spec.provider", "envoy")}, field: "spec.provider", message: `Unsupported value: "envoy"`},
	{name: "metricsServer not a URL", base: validCanary, mutate: []mutation{set("spec.metricsServer", "prometheus:9090")}, field: "spec.metricsServer", message: "must be an http:// or https:// URL"},
	{name: "progressDeadlineSeconds zero", base: validCanary, mutate: []mutation{set("spec.progressDeadlineSeconds", 0)}, field: "spec.progressDeadlineSeconds", message: "greater than or equal to 1"},
	{name: "unknown top-level field", base: validCanary, mutate: []mutation{set("spec.rollbackOnFailure", true)}, field: `unknown field "spec.rollbackOnFailure"`, message: "strict decoding error"},
	{name: "misspelled analysis field", base: validCanary, mutate: []mutation{set("spec.analysis.stepweight", 5)}, field: `unknown field "spec.analysis.stepweight"`, message: "strict decoding error"},
	{name: "autoscalerRef kind unsupported", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling.k8s.io/v1, kind: VerticalPodAutoscaler, name: podinfo}`))}, field: "spec.autoscalerRef.kind", message: "Unsupported value"},
	{name: "primaryScalerReplicas min above max", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo, primaryScalerReplicas: {minReplicas: 5, maxReplicas: 2}}`))}, field: "spec.autoscalerRef", message: "minReplicas must not exceed maxReplicas"},
	{name: "ingressRef wrong kind", base: validCanary, mutate: []mutation{set("spec.ingressRef", yamlValue(`{apiVersion: v1, kind: Service, name: podinfo}`))}, field: "spec.ingressRef", message: "spec.ingressRef.kind must be Ingress"},
}

var invalidCanaryService = []invalidCase{
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
	{name: "gatewayAPI routeKind unknown", base: validCanary, mutate: []mutation{set("spec.service.gatewayAPI", yamlValue(`{routeKind: TCPRoute}`))}, field: "spec.service.gatewayAPI.routeKind", message: "Unsupported value"},
	{name: "gatewayAPI routeRef without name", base: validCanary, mutate: []mutation{set("spec.service.gatewayAPI", yamlValue(`{routeRef: {}}`))}, field: "spec.service.gatewayAPI.routeRef.name", message: "Required value"},
	{name: "gatewayAPI routeRef name not a DNS name", base: validCanary, mutate: []mutation{set("spec.service.gatewayAPI", yamlValue(`{routeRef: {name: My_Route}}`))}, field: "spec.service.gatewayAPI.routeRef.name", message: "should match"},
	{name: "gatewayAPI routeRef with GRPCRoute", base: validCanary, mutate: []mutation{set("spec.service.gatewayAPI", yamlValue(`{routeKind: GRPCRoute, routeRef: {name: app}}`))}, field: "spec.service.gatewayAPI", message: "remove routeKind GRPCRoute or routeRef"},
	{name: "tls mode unknown", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: STRICT}}`))}, field: "spec.service.trafficPolicy.tls.mode", message: "Unsupported value"},
}

var invalidCanaryAnalysis = []invalidCase{
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
	{name: "baseline with blue/green", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 5), set("spec.analysis.baseline", true)}, field: "spec.analysis", message: "spec.analysis.baseline needs the progressive canary strategy (stepWeight or stepWeights)"},
	{name: "baseline with maxWeight unset", base: validCanary, mutate: []mutation{del("spec.analysis.maxWeight"), set("spec.analysis.baseline", true)}, field: "spec.analysis", message: "maximum weight (maxWeight, or the last stepWeights entry) must be set to 50 or less"},
	{name: "baseline with maxWeight 60", base: validCanary, mutate: []mutation{set("spec.analysis.maxWeight", 60), set("spec.analysis.baseline", true)}, field: "spec.analysis", message: "must be set to 50 or less"},
	{name: "baseline with stepWeights up to 80", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{10, 40, 80}), set("spec.analysis.baseline", true)}, field: "spec.analysis", message: "must be set to 50 or less"},
	{name: "baseline of a DaemonSet", base: validCanary, mutate: []mutation{set("spec.targetRef.kind", "DaemonSet"), set("spec.analysis.baseline", true)}, field: "spec", message: "spec.analysis.baseline needs a Deployment target"},
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

	// analysis features (issue 19): inconclusive, dry run, initialDelay, successLimit, historyLimit
	{name: "inconclusiveRange without thresholdRange", base: validCanary, mutate: []mutation{del("spec.analysis.metrics.0.thresholdRange"), set("spec.analysis.metrics.0.inconclusiveRange", yamlValue(`{min: 95}`))}, field: "spec.analysis.metrics[0]", message: "inconclusiveRange needs a thresholdRange"},
	{name: "inconclusiveRange min above max", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.inconclusiveRange", yamlValue(`{min: 98, max: 95}`))}, field: "spec.analysis.metrics[0].inconclusiveRange", message: "inconclusiveRange.min must be less than or equal to inconclusiveRange.max"},
	{name: "inconclusiveRange empty", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.inconclusiveRange", yamlValue(`{}`))}, field: "spec.analysis.metrics[0].inconclusiveRange", message: "inconclusiveRange needs min, max or both"},
	{name: "dryRun not a boolean", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.dryRun", "yes")}, field: "spec.analysis.metrics[0].dryRun", message: "must be of type boolean"},
	{name: "initialDelay not a duration", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.initialDelay", "5 minutes")}, field: "spec.analysis.metrics[0].initialDelay", message: "should match"},
	{name: "successLimit zero", base: validCanary, mutate: []mutation{set("spec.analysis.successLimit", 0)}, field: "spec.analysis.successLimit", message: "greater than or equal to 1"},
	{name: "historyLimit zero", base: validCanary, mutate: []mutation{set("spec.analysis.historyLimit", 0)}, field: "spec.analysis.historyLimit", message: "greater than or equal to 1"},
	{name: "historyLimit above 50", base: validCanary, mutate: []mutation{set("spec.analysis.historyLimit", 51)}, field: "spec.analysis.historyLimit", message: "less than or equal to 50"},

	// compared metrics (issue 19 §4)
	{name: "compare without against", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{maxIncrease: 10%}`))}, field: "spec.analysis.metrics[0].compare.against", message: "Required value"},
	{name: "compare against unknown", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: canary, maxIncrease: 10%}`))}, field: "spec.analysis.metrics[0].compare.against", message: `Unsupported value: "canary"`},
	{name: "compare without tolerance or test", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary}`))}, field: "spec.analysis.metrics[0].compare", message: "compare needs maxIncrease (e.g. 10%) or maxDelta"},
	{name: "compare with maxIncrease and maxDelta", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxIncrease: 10%, maxDelta: 1}`))}, field: "spec.analysis.metrics[0].compare", message: "maxIncrease (relative, e.g. 10%) or maxDelta (absolute), not both"},
	{name: "compare maxIncrease without %", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxIncrease: "10"}`))}, field: "spec.analysis.metrics[0].compare.maxIncrease", message: "should match"},
	{name: "compare maxIncrease negative", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxIncrease: "-5%"}`))}, field: "spec.analysis.metrics[0].compare.maxIncrease", message: "should match"},
	{name: "compare maxDelta negative", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxDelta: -1}`))}, field: "spec.analysis.metrics[0].compare.maxDelta", message: "greater than or equal to 0"},
	{name: "compare direction unknown", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxDelta: 1, direction: Up}`))}, field: "spec.analysis.metrics[0].compare.direction", message: "Unsupported value"},
	{name: "compare test unknown", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: TTest}`))}, field: "spec.analysis.metrics[0].compare.test", message: "Unsupported value"},
	{name: "compare minSamples without test", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, maxDelta: 1, minSamples: 10}`))}, field: "spec.analysis.metrics[0].compare", message: "configure the statistical test: set test: MannWhitney"},
	{name: "compare minSamples below 8", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: MannWhitney, minSamples: 5}`))}, field: "spec.analysis.metrics[0].compare.minSamples", message: "greater than or equal to 8"},
	{name: "compare minSamples above 30", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: MannWhitney, minSamples: 31}`))}, field: "spec.analysis.metrics[0].compare.minSamples", message: "less than or equal to 30"},
	{name: "compare pValue zero", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: MannWhitney, pValue: 0}`))}, field: "spec.analysis.metrics[0].compare.pValue", message: "must be greater than 0 and at most 0.5"},
	{name: "compare pValue above 0.5", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: primary, test: MannWhitney, pValue: 0.9}`))}, field: "spec.analysis.metrics[0].compare.pValue", message: "must be greater than 0 and at most 0.5"},
	{name: "compare against baseline without baseline", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.compare", yamlValue(`{against: baseline, maxIncrease: 10%}`))}, field: "spec.analysis", message: "compared against: baseline needs spec.analysis.baseline: true"},
	{name: "compare against baseline with baseline false", base: validCanary, mutate: []mutation{set("spec.analysis.baseline", false), set("spec.analysis.metrics.0.compare", yamlValue(`{against: baseline, maxIncrease: 10%}`))}, field: "spec.analysis", message: "compared against: baseline needs spec.analysis.baseline: true"},
}

// items repeats a YAML value n times as a list.
func items(n int, item string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = yamlValue(strings.ReplaceAll(item, "$i", strconv.Itoa(i)))
	}
	return out
}

var moreInvalidCanaries = []invalidCase{
	// targetRef and top level
	{name: "targetRef Deployment with apiVersion v1", base: validCanary, mutate: []mutation{set("spec.targetRef.apiVersion", "v1")}, field: "spec.targetRef", message: "spec.targetRef.apiVersion must be apps/v1 for a Deployment, a DaemonSet or a StatefulSet"},
	{name: "targetRef DaemonSet with apiVersion extensions/v1beta1", base: validCanary, mutate: []mutation{set("spec.targetRef", yamlValue(`{apiVersion: extensions/v1beta1, kind: DaemonSet, name: podinfo}`))}, field: "spec.targetRef", message: "must be apps/v1 for a Deployment, a DaemonSet or a StatefulSet"},
	{name: "targetRef apiVersion empty", base: validCanary, mutate: []mutation{set("spec.targetRef.apiVersion", "")}, field: "spec.targetRef.apiVersion", message: "at least 1 chars long"},
	{name: "targetRef name too long", base: validCanary, mutate: []mutation{set("spec.targetRef.name", strings.Repeat("a", 246))}, field: "spec.targetRef.name", message: "may not be more than 245"},
	{name: "metricsServer without host", base: validCanary, mutate: []mutation{set("spec.metricsServer", "http://")}, field: "spec.metricsServer", message: "must name a host"},
	{name: "metricsServer with a space", base: validCanary, mutate: []mutation{set("spec.metricsServer", "http://prometheus:9090/a b")}, field: "spec.metricsServer", message: "hold no spaces"},
	{name: "metricsServer too long", base: validCanary, mutate: []mutation{set("spec.metricsServer", "http://"+strings.Repeat("a", 2042))}, field: "spec.metricsServer", message: "may not be more than 2048"},
	{name: "progressDeadlineSeconds negative", base: validCanary, mutate: []mutation{set("spec.progressDeadlineSeconds", -60)}, field: "spec.progressDeadlineSeconds", message: "greater than or equal to 1"},
	{name: "routeRef wrong kind", base: validCanary, mutate: []mutation{set("spec.routeRef", yamlValue(`{apiVersion: apisix.apache.org/v2, kind: Route, name: r}`))}, field: "spec.routeRef", message: "spec.routeRef.kind must be ApisixRoute"},
	{name: "upstreamRef wrong kind", base: validCanary, mutate: []mutation{set("spec.upstreamRef", yamlValue(`{apiVersion: gloo.solo.io/v1, kind: Service, name: u}`))}, field: "spec.upstreamRef", message: "spec.upstreamRef.kind must be Upstream"},
	{name: "ingressRef name empty", base: validCanary, mutate: []mutation{set("spec.ingressRef", yamlValue(`{apiVersion: networking.k8s.io/v1, kind: Ingress, name: ""}`))}, field: "spec.ingressRef.name", message: "at least 1 chars long"},
	{name: "autoscalerRef name empty", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: ""}`))}, field: "spec.autoscalerRef.name", message: "at least 1 chars long"},
	{name: "primaryScalerReplicas minReplicas zero", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: p, primaryScalerReplicas: {minReplicas: 0}}`))}, field: "spec.autoscalerRef.primaryScalerReplicas.minReplicas", message: "greater than or equal to 1"},
	{name: "primaryScalerReplicas maxReplicas zero", base: validCanary, mutate: []mutation{set("spec.autoscalerRef", yamlValue(`{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: p, primaryScalerReplicas: {maxReplicas: 0}}`))}, field: "spec.autoscalerRef.primaryScalerReplicas.maxReplicas", message: "greater than or equal to 1"},
	{name: "provider gatewayapi version unknown", base: validCanary, mutate: []mutation{set("spec.provider", "gatewayapi:v2")}, field: "spec.provider", message: `Unsupported value: "gatewayapi:v2"`},
	{name: "Canary without spec", base: validCanary, mutate: []mutation{del("spec")}, field: "spec", message: "Required value"},
	{name: "suspend not a boolean", base: validCanary, mutate: []mutation{set("spec.suspend", "yes")}, field: "spec.suspend", message: "must be of type boolean"},

	// service
	{name: "service portName upper case", base: validCanary, mutate: []mutation{set("spec.service.portName", "HTTP")}, field: "spec.service.portName", message: "should match"},
	{name: "service portName too long", base: validCanary, mutate: []mutation{set("spec.service.portName", "http-metrics-abcd")}, field: "spec.service.portName", message: "may not be more than 15"},
	{name: "service targetPort negative", base: validCanary, mutate: []mutation{set("spec.service.targetPort", -1)}, field: "spec.service.targetPort", message: "must be a port number (1-65535, or 0 for the Service port) or a container port name"},
	{name: "service targetPort too high", base: validCanary, mutate: []mutation{set("spec.service.targetPort", 70000)}, field: "spec.service.targetPort", message: "must be a port number (1-65535, or 0"},
	{name: "service targetPort name not a DNS label", base: validCanary, mutate: []mutation{set("spec.service.targetPort", "Http_Port")}, field: "spec.service.targetPort", message: "or a container port name"},
	{name: "service timeout negative", base: validCanary, mutate: []mutation{set("spec.service.timeout", "-30s")}, field: "spec.service.timeout", message: "should match"},
	{name: "service backendTimeout not a duration", base: validCanary, mutate: []mutation{set("spec.service.backendTimeout", "soon")}, field: "spec.service.backendTimeout", message: "should match"},
	{name: "service hosts above 64", base: validCanary, mutate: []mutation{set("spec.service.hosts", items(65, `h$i.example.com`))}, field: "spec.service.hosts", message: "must have at most 64 items"},
	{name: "service match above 32", base: validCanary, mutate: []mutation{set("spec.service.match", items(33, `{uri: {prefix: /$i}}`))}, field: "spec.service.match", message: "must have at most 32 items"},
	{name: "match port zero", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{port: 0}]`))}, field: "spec.service.match[0].port", message: "greater than or equal to 1"},
	{name: "match header with two operators", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{headers: {x-user: {exact: a, regex: "a.*"}}}]`))}, field: "spec.service.match[0].headers[x-user]", message: "at most one of exact, prefix, suffix or regex"},
	{name: "match queryParam with two operators", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{queryParams: {v: {prefix: a, suffix: b}}}]`))}, field: "spec.service.match[0].queryParams[v]", message: "at most one of exact, prefix, suffix or regex"},
	{name: "match scheme with two operators", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{scheme: {exact: http, prefix: h}}]`))}, field: "spec.service.match[0].scheme", message: "at most one of exact"},
	{name: "match withoutHeaders with two operators", base: validCanary, mutate: []mutation{set("spec.service.match", yamlValue(`[{withoutHeaders: {x-b: {exact: a, suffix: b}}}]`))}, field: "spec.service.match[0].withoutHeaders[x-b]", message: "at most one of exact"},
	{name: "match exact too long", base: validCanary, mutate: []mutation{set("spec.service.match", []any{map[string]any{"uri": map[string]any{"exact": strings.Repeat("a", 1025)}}})}, field: "spec.service.match[0].uri.exact", message: "may not be more than 1024"},
	{name: "retries attempts negative", base: validCanary, mutate: []mutation{set("spec.service.retries", yamlValue(`{attempts: -1}`))}, field: "spec.service.retries.attempts", message: "greater than or equal to 0"},
	{name: "retries attempts above 100", base: validCanary, mutate: []mutation{set("spec.service.retries", yamlValue(`{attempts: 1000}`))}, field: "spec.service.retries.attempts", message: "less than or equal to 100"},
	{name: "corsPolicy maxAge not a duration", base: validCanary, mutate: []mutation{set("spec.service.corsPolicy", yamlValue(`{maxAge: 1 day}`))}, field: "spec.service.corsPolicy.maxAge", message: "should match"},
	{name: "corsPolicy allowOrigins with two operators", base: validCanary, mutate: []mutation{set("spec.service.corsPolicy", yamlValue(`{allowOrigins: [{exact: "https://a", prefix: "https://"}]}`))}, field: "spec.service.corsPolicy.allowOrigins[0]", message: "at most one of exact"},
	{name: "gatewayRef port zero", base: validCanary, mutate: []mutation{set("spec.service.gatewayRefs", yamlValue(`[{name: gw, port: 0}]`))}, field: "spec.service.gatewayRefs[0].port", message: "greater than or equal to 1"},
	{name: "gatewayRef kind with a space", base: validCanary, mutate: []mutation{set("spec.service.gatewayRefs", yamlValue(`[{name: gw, kind: "Gate way"}]`))}, field: "spec.service.gatewayRefs[0].kind", message: "should match"},
	{name: "gatewayRef name too long", base: validCanary, mutate: []mutation{set("spec.service.gatewayRefs", []any{map[string]any{"name": strings.Repeat("g", 254)}})}, field: "spec.service.gatewayRefs[0].name", message: "may not be more than 253"},
	{name: "gatewayRef sectionName not a DNS name", base: validCanary, mutate: []mutation{set("spec.service.gatewayRefs", yamlValue(`[{name: gw, sectionName: Web_Listener}]`))}, field: "spec.service.gatewayRefs[0].sectionName", message: "should match"},
	{name: "mirror filters above 8", base: validCanary, mutate: []mutation{set("spec.service.mirror", items(9, `{backendRef: {name: m$i, port: 80}}`))}, field: "spec.service.mirror", message: "must have at most 8 items"},
	{name: "unmanagedMetadata labels above 64", base: validCanary, mutate: []mutation{set("spec.service.unmanagedMetadata", map[string]any{"labels": items(65, `l$i`)})}, field: "spec.service.unmanagedMetadata.labels", message: "must have at most 64 items"},
	{name: "apex label not a string", base: validCanary, mutate: []mutation{set("spec.service.apex", yamlValue(`{labels: {team: 5}}`))}, field: "spec.service.apex.labels.team", message: "must be of type string"},
	{name: "rewrite uri too long", base: validCanary, mutate: []mutation{set("spec.service.rewrite", map[string]any{"uri": strings.Repeat("u", 1025)})}, field: "spec.service.rewrite.uri", message: "may not be more than 1024"},

	// trafficPolicy
	{name: "tcp maxConnections negative", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{connectionPool: {tcp: {maxConnections: -1}}}`))}, field: "spec.service.trafficPolicy.connectionPool.tcp.maxConnections", message: "greater than or equal to 0"},
	{name: "tcp connectTimeout not a duration", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{connectionPool: {tcp: {connectTimeout: "1 s"}}}`))}, field: "spec.service.trafficPolicy.connectionPool.tcp.connectTimeout", message: "should match"},
	{name: "http h2UpgradePolicy unknown", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{connectionPool: {http: {h2UpgradePolicy: ALWAYS}}}`))}, field: "spec.service.trafficPolicy.connectionPool.http.h2UpgradePolicy", message: "Unsupported value"},
	{name: "http http1MaxPendingRequests negative", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{connectionPool: {http: {http1MaxPendingRequests: -1}}}`))}, field: "spec.service.trafficPolicy.connectionPool.http.http1MaxPendingRequests", message: "greater than or equal to 0"},
	{name: "outlierDetection maxEjectionPercent above 100", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{outlierDetection: {maxEjectionPercent: 101}}`))}, field: "spec.service.trafficPolicy.outlierDetection.maxEjectionPercent", message: "less than or equal to 100"},
	{name: "outlierDetection minHealthPercent negative", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{outlierDetection: {minHealthPercent: -1}}`))}, field: "spec.service.trafficPolicy.outlierDetection.minHealthPercent", message: "greater than or equal to 0"},
	{name: "outlierDetection consecutive5xxErrors negative", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{outlierDetection: {consecutive5xxErrors: -5}}`))}, field: "spec.service.trafficPolicy.outlierDetection.consecutive5xxErrors", message: "greater than or equal to 0"},
	{name: "outlierDetection interval not a duration", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{outlierDetection: {interval: ten seconds}}`))}, field: "spec.service.trafficPolicy.outlierDetection.interval", message: "should match"},
	{name: "loadBalancer simple unknown", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {simple: FASTEST}}`))}, field: "spec.service.trafficPolicy.loadBalancer.simple", message: "Unsupported value"},
	{name: "loadBalancer warmup without unit", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {warmupDurationSecs: "60"}}`))}, field: "spec.service.trafficPolicy.loadBalancer.warmupDurationSecs", message: "should match"},
	{name: "consistentHash without a key", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {consistentHash: {minimumRingSize: 1024}}}`))}, field: "spec.service.trafficPolicy.loadBalancer.consistentHash", message: "exactly one of httpHeaderName"},
	{name: "consistentHash minimumRingSize negative", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: -1}}}`))}, field: "spec.service.trafficPolicy.loadBalancer.consistentHash.minimumRingSize", message: "greater than or equal to 0"},
	{name: "consistentHash cookie ttl not a duration", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: forever}}}}`))}, field: "spec.service.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl", message: "should match"},
	{name: "tls MUTUAL without certificate", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: MUTUAL, sni: a.example.com}}`))}, field: "spec.service.trafficPolicy.tls", message: "mode MUTUAL needs clientCertificate and privateKey (or credentialName)"},
	{name: "tls MUTUAL without private key", base: validCanary, mutate: []mutation{set("spec.service.trafficPolicy", yamlValue(`{tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem}}`))}, field: "spec.service.trafficPolicy.tls", message: "mode MUTUAL needs clientCertificate and privateKey"},

	// analysis
	{name: "interval zero", base: validCanary, mutate: []mutation{set("spec.analysis.interval", "0s")}, field: "spec.analysis.interval", message: "spec.analysis.interval must be greater than 0"},
	{name: "interval negative", base: validCanary, mutate: []mutation{set("spec.analysis.interval", "-1m")}, field: "spec.analysis.interval", message: "should match"},
	{name: "iterations negative", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", -1)}, field: "spec.analysis.iterations", message: "greater than or equal to 0"},
	{name: "iterations above 10000", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 10001)}, field: "spec.analysis.iterations", message: "less than or equal to 10000"},
	{name: "threshold negative", base: validCanary, mutate: []mutation{set("spec.analysis.threshold", -1)}, field: "spec.analysis.threshold", message: "greater than or equal to 1"},
	{name: "maxWeight zero", base: validCanary, mutate: []mutation{set("spec.analysis.maxWeight", 0)}, field: "spec.analysis.maxWeight", message: "greater than or equal to 1"},
	{name: "stepWeights empty", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{})}, field: "spec.analysis.stepWeights", message: "should have at least 1 items"},
	{name: "stepWeights above 100 rungs", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", items(101, `1`))}, field: "spec.analysis.stepWeights", message: "must have at most 100 items"},
	{name: "iterations and stepWeights", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.stepWeights", []any{10, 20}), set("spec.analysis.iterations", 3)}, field: "spec.analysis", message: "select different strategies"},
	{name: "mirrorWeight without mirror", base: validCanary, mutate: []mutation{set("spec.analysis.mirrorWeight", 50)}, field: "spec.analysis", message: "mirrorWeight has no effect without spec.analysis.mirror: true"},
	{name: "mirrorWeight with mirror false", base: validCanary, mutate: []mutation{set("spec.analysis.mirror", false), set("spec.analysis.mirrorWeight", 50)}, field: "spec.analysis", message: "set mirror or remove mirrorWeight"},
	{name: "mirrorWeight negative", base: validCanary, mutate: []mutation{set("spec.analysis.mirror", true), set("spec.analysis.mirrorWeight", -1)}, field: "spec.analysis.mirrorWeight", message: "greater than or equal to 0"},
	{name: "stepWeightPromotion above 100", base: validCanary, mutate: []mutation{set("spec.analysis.stepWeightPromotion", 101)}, field: "spec.analysis.stepWeightPromotion", message: "less than or equal to 100"},
	{name: "stepWeightPromotion with iterations", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 5), set("spec.analysis.stepWeightPromotion", 20)}, field: "spec.analysis", message: "stepWeightPromotion applies to the progressive canary strategy only"},
	{name: "primaryReadyThreshold negative", base: validCanary, mutate: []mutation{set("spec.analysis.primaryReadyThreshold", -1)}, field: "spec.analysis.primaryReadyThreshold", message: "greater than or equal to 0"},
	{name: "canaryReadyThreshold above 100", base: validCanary, mutate: []mutation{set("spec.analysis.canaryReadyThreshold", 101)}, field: "spec.analysis.canaryReadyThreshold", message: "less than or equal to 100"},
	{name: "analysis match above 32", base: validCanary, mutate: []mutation{del("spec.analysis.stepWeight"), set("spec.analysis.iterations", 5), set("spec.analysis.match", items(33, `{headers: {x-c: {exact: "$i"}}}`))}, field: "spec.analysis.match", message: "must have at most 32 items"},
	{name: "session maxAge zero", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: c, maxAge: 0}`))}, field: "spec.analysis.sessionAffinity.maxAge", message: "greater than or equal to 1"},
	{name: "session primaryCookieName with a space", base: validCanary, mutate: []mutation{set("spec.analysis.sessionAffinity", yamlValue(`{cookieName: c, primaryCookieName: "p c"}`))}, field: "spec.analysis.sessionAffinity.primaryCookieName", message: "should match"},

	// metrics
	{name: "metrics with the same name", base: validCanary, mutate: []mutation{set("spec.analysis.metrics", yamlValue(`[{name: request-success-rate, thresholdRange: {min: 99}}, {name: request-success-rate, thresholdRange: {min: 90}}]`))}, field: "spec.analysis.metrics", message: "spec.analysis.metrics names must be unique"},
	{name: "metrics above 64", base: validCanary, mutate: []mutation{set("spec.analysis.metrics", items(65, `{name: m$i, query: vector(1), thresholdRange: {max: 1}}`))}, field: "spec.analysis.metrics", message: "must have at most 64 items"},
	{name: "metric interval zero", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.interval", "0s")}, field: "spec.analysis.metrics[0].interval", message: "a metric interval must be greater than 0"},
	{name: "metric query empty", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.name", "error-rate"), set("spec.analysis.metrics.0.query", "")}, field: "spec.analysis.metrics[0].query", message: "at least 1 chars long"},
	{name: "metric query too long", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.name", "error-rate"), set("spec.analysis.metrics.0.query", strings.Repeat("1", 16385))}, field: "spec.analysis.metrics[0].query", message: "may not be more than 16384"},
	{name: "metric noData unknown", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.noData", "Ignore")}, field: "spec.analysis.metrics[0].noData", message: `Unsupported value: "Ignore"`},
	{name: "metric onError Skip", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.onError", "Skip")}, field: "spec.analysis.metrics[0].onError", message: `Unsupported value: "Skip"`},
	{name: "thresholdRange empty", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.thresholdRange", map[string]any{})}, field: "spec.analysis.metrics[0].thresholdRange", message: "thresholdRange needs min, max or both"},
	{name: "thresholdRange min not a number", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.thresholdRange.min", "high")}, field: "spec.analysis.metrics[0].thresholdRange.min", message: "must be of type number"},
	{name: "metric templateRef name empty", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.templateRef", yamlValue(`{name: ""}`))}, field: "spec.analysis.metrics[0].templateRef.name", message: "at least 1 chars long"},
	{name: "metric templateRef namespace too long", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.templateRef", map[string]any{"name": "t", "namespace": strings.Repeat("n", 64)})}, field: "spec.analysis.metrics[0].templateRef.namespace", message: "may not be more than 63"},
	{name: "metric name empty", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.name", "")}, field: "spec.analysis.metrics[0].name", message: "at least 1 chars long"},
	{name: "metric name too long", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.name", strings.Repeat("m", 254))}, field: "spec.analysis.metrics[0].name", message: "may not be more than 253"},
	{name: "metric templateVariable not a string", base: validCanary, mutate: []mutation{set("spec.analysis.metrics.0.templateVariables", yamlValue(`{direction: [in]}`))}, field: "spec.analysis.metrics[0].templateVariables.direction", message: "must be of type string"},

	// webhooks and alerts
	{name: "webhooks with the same name", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks", yamlValue(`[{name: load-test, url: "http://a/"}, {name: load-test, url: "http://b/", type: pre-rollout}]`))}, field: "spec.analysis.webhooks", message: "spec.analysis.webhooks names must be unique"},
	{name: "webhooks above 64", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks", items(65, `{name: w$i, url: "http://w/"}`))}, field: "spec.analysis.webhooks", message: "must have at most 64 items"},
	{name: "webhook url without host", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.url", "http://")}, field: "spec.analysis.webhooks[0].url", message: "webhook url must name a host"},
	{name: "webhook url with user info", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.url", "http://admin:s3cr3t@loadtester.test/")}, field: "spec.analysis.webhooks[0].url", message: "no spaces or user info"},
	{name: "webhook url with a space in the host", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.url", "http://load tester/")}, field: "spec.analysis.webhooks[0].url", message: "no spaces"},
	{name: "webhook url too long", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.url", "http://w/"+strings.Repeat("p", 2040))}, field: "spec.analysis.webhooks[0].url", message: "may not be more than 2048"},
	{name: "webhook timeout zero", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.timeout", "0s")}, field: "spec.analysis.webhooks[0].timeout", message: "webhook timeout must be greater than 0"},
	{name: "webhook retries above 10", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.retries", 11)}, field: "spec.analysis.webhooks[0].retries", message: "less than or equal to 10"},
	{name: "webhook name empty", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.name", "")}, field: "spec.analysis.webhooks[0].name", message: "at least 1 chars long"},
	{name: "webhook metadata not a string", base: validCanary, mutate: []mutation{set("spec.analysis.webhooks.0.metadata", yamlValue(`{cmd: 5}`))}, field: "spec.analysis.webhooks[0].metadata.cmd", message: "must be of type string"},
	{name: "alerts with the same name", base: validCanary, mutate: []mutation{set("spec.analysis.alerts", yamlValue(`[{name: on-call, providerRef: {name: a}}, {name: on-call, providerRef: {name: b}}]`))}, field: "spec.analysis.alerts", message: "spec.analysis.alerts names must be unique"},
	{name: "alerts above 32", base: validCanary, mutate: []mutation{set("spec.analysis.alerts", items(33, `{name: a$i, providerRef: {name: slack}}`))}, field: "spec.analysis.alerts", message: "must have at most 32 items"},
	{name: "alert name empty", base: validCanary, mutate: []mutation{set("spec.analysis.alerts.0.name", "")}, field: "spec.analysis.alerts[0].name", message: "at least 1 chars long"},
	{name: "alert providerRef name empty", base: validCanary, mutate: []mutation{set("spec.analysis.alerts.0.providerRef.name", "")}, field: "spec.analysis.alerts[0].providerRef.name", message: "at least 1 chars long"},
}
