package apisix

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it:
// request-success-rate in percent of non-5xx responses, request-duration as
// the 99th percentile in milliseconds, from APISIX's prometheus plugin.
// APISIX labels a route of the ingress controller <ns>_<ApisixRoute>_<http
// route>; Sluice's ApisixRoute is <routeRef>-<apex>-canary ({{ route }} is
// spec.routeRef.name). As in Flagger, the series count the requests of
// Sluice's route (both backends).
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+",code!~"5.."}[{{ interval }}])) / sum(rate(apisix_http_status{route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~"request",route=~"{{ namespace }}_{{ route }}-{{ service }}-canary_.+"}[{{ interval }}])) by (le))`,
}
