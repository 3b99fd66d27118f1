package traefik

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it:
// request-success-rate in percent of non-5xx responses, request-duration as
// the 99th percentile in milliseconds. Each measures the canary only.
// Traefik's TraefikService children are labelled <ns>-<svc>-<port>@kubernetescrd.
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(traefik_service_requests_total{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd",code!~"5.."}[{{ interval }}])) / sum(rate(traefik_service_requests_total{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"{{ namespace }}-{{ service }}-canary-.+@kubernetescrd"}[{{ interval }}])) by (le)) * 1000`,
}
