package gatewayapi

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it:
// request-success-rate in percent of non-5xx responses, request-duration as
// the 99th percentile in milliseconds. Each measures the canary only.
// The Gateway API through Traefik: backends of HTTPRoutes are labelled
// httproute-<ns>-<route>-...-<ns>-<backend>-...@kubernetesgateway. Other Gateway
// implementations emit other series: measure them with a MetricTemplate.
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(traefik_service_requests_total{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway",code!~"5.."}[{{ interval }}])) / sum(rate(traefik_service_requests_total{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"httproute-{{ namespace }}-{{ route }}-.*{{ namespace }}-{{ service }}-canary-.*@kubernetesgateway"}[{{ interval }}])) by (le)) * 1000`,
}
