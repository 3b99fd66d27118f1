package metrics

import (
	"fmt"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// builtins are the queries of the builtin metrics, per traffic provider:
// request-success-rate in percent of non-5xx responses, request-duration as
// the 99th percentile in milliseconds. Each measures the canary only.
var builtins = map[string]map[string]string{
	"istio": {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))`,
	},
	// Traefik's TraefikService children are labelled <ns>-<svc>-<port>@kubernetescrd.
	"traefik": {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(traefik_service_requests_total{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd",code!~"5.."}[{{ interval }}])) / sum(rate(traefik_service_requests_total{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd"}[{{ interval }}])) by (le)) * 1000`,
	},
	// The Gateway API through Traefik: backends of HTTPRoutes are labelled
	// httproute-<ns>-<route>-...-<ns>-<backend>-...@kubernetesgateway.
	"gatewayapi": {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(traefik_service_requests_total{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway",code!~"5.."}[{{ interval }}])) / sum(rate(traefik_service_requests_total{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway"}[{{ interval }}])) by (le)) * 1000`,
	},
	// No mesh: the application's own http_request_duration_seconds by pod.
	"kubernetes": {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",status!~"5.*"}[{{ interval }}])) / sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le)) * 1000`,
	},
}

// builtinFamily maps a provider name to the family of builtin queries.
func builtinFamily(provider string) string {
	if strings.HasPrefix(provider, "gatewayapi") {
		return "gatewayapi"
	}
	return provider
}

// BuiltinQuery returns the query template of a builtin metric for a provider.
func BuiltinQuery(provider, metric string) (string, error) {
	qs, ok := builtins[builtinFamily(provider)]
	if !ok {
		return "", fmt.Errorf("provider %s has no builtin metric %s: measure it with a MetricTemplate (templateRef)", provider, metric)
	}
	q, ok := qs[metric]
	if !ok {
		return "", fmt.Errorf("%s is not a builtin metric: use request-success-rate, request-duration or a MetricTemplate", metric)
	}
	return q, nil
}
