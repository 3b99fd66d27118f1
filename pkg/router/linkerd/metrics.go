package linkerd

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it, from
// the Linkerd proxies' inbound series of the canary Deployment (Flagger's
// queries): request-success-rate in percent of responses not classified as
// failures, request-duration as the 99th percentile in milliseconds.
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",classification!="failure",direction="inbound"}[{{ interval }}])) / sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) by (le))`,
}
