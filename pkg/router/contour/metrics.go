package contour

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it:
// request-success-rate in percent of non-5xx responses, request-duration as
// the 99th percentile in milliseconds. Each measures the canary only: Envoy,
// configured by Contour, names its clusters <ns>_<svc>-canary_<port>...
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))`,
}
