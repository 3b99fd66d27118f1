package kuma

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it
// (Flagger's Kuma queries): request-success-rate in percent of non-5xx
// responses and request-duration as the 99th percentile in milliseconds,
// from the Envoy series of the canary's kuma.io/service tag
// (<service>-canary_<namespace>_svc_<port>). A mesh whose MeshServices are
// Exclusive names Envoy clusters differently: measure it with a
// MetricTemplate.
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))`,
}
