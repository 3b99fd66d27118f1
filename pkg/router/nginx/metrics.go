package nginx

import sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"

// Metrics are the builtin metrics of this router, registered with it:
// request-success-rate in percent of non-5xx responses, request-duration as
// the mean in milliseconds (ingress-nginx exports a sum and a count). Each
// measures the canary only: ingress-nginx labels the requests of the main
// Ingress ({{ ingress }}, spec.ingressRef) that its canary served with a
// non-empty canary label.
var Metrics = map[string]string{
	sluicev1beta1.MetricRequestSuccessRate: `sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!="",status!~"5.*"}[{{ interval }}])) / sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 100`,
	sluicev1beta1.MetricRequestDuration:    `sum(rate(nginx_ingress_controller_response_duration_seconds_sum{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) / sum(rate(nginx_ingress_controller_response_duration_seconds_count{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 1000`,
}
