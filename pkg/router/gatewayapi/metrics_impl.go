package gatewayapi

import (
	"fmt"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Implementation is the Gateway API implementation whose series the
// builtin metrics of the gatewayapi providers query (manager flag
// --gateway-api-implementation). Each implementation names the backends of
// a route differently in its metrics, and some cannot tell the canary's
// requests from the primary's at all.
type Implementation string

// The implementations the flag accepts.
const (
	ImplementationTraefik            Implementation = "traefik"
	ImplementationEnvoyGateway       Implementation = "envoy-gateway"
	ImplementationIstio              Implementation = "istio"
	ImplementationCilium             Implementation = "cilium"
	ImplementationKong               Implementation = "kong"
	ImplementationNGINXGatewayFabric Implementation = "nginx-gateway-fabric"
)

// DefaultImplementation is Traefik, whose series the builtins have always
// queried (and which the e2e scenarios run).
const DefaultImplementation = ImplementationTraefik

// Implementations lists the accepted implementations, in the order of the docs.
var Implementations = []Implementation{ImplementationTraefik, ImplementationEnvoyGateway, ImplementationIstio,
	ImplementationCilium, ImplementationKong, ImplementationNGINXGatewayFabric}

// ParseImplementation validates a --gateway-api-implementation value.
func ParseImplementation(s string) (Implementation, error) {
	for _, i := range Implementations {
		if string(i) == s {
			return i, nil
		}
	}
	names := make([]string, len(Implementations))
	for n, i := range Implementations {
		names[n] = string(i)
	}
	return "", fmt.Errorf("unknown Gateway API implementation %q: use one of %s", s, strings.Join(names, ", "))
}

// implementationMetrics are the builtin queries by implementation. Every
// query selects the canary's backend only, so a healthy primary cannot
// hide a failing canary.
var implementationMetrics = map[Implementation]map[string]string{
	ImplementationTraefik: Metrics,
	// Istio's gateways (and sidecars) report istio_requests_total per
	// destination Service; the gateway is the source reporter, so the
	// request is counted once whether or not the canary pods have a sidecar.
	ImplementationIstio: {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(istio_requests_total{reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name="{{ service }}-canary",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name="{{ service }}-canary"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name="{{ service }}-canary"}[{{ interval }}])) by (le))`,
	},
	// Cilium's Gateway runs Envoy inside Cilium, whose L7 flows Hubble turns
	// into its httpV2 metrics; with labelsContext destination_namespace and
	// destination_workload (see docs/routers.md) they name the canary's
	// workload, the Canary's target.
	ImplementationCilium: {
		sluicev1beta1.MetricRequestSuccessRate: `sum(rate(hubble_http_requests_total{destination_namespace="{{ namespace }}",destination_workload="{{ target }}",status!~"5.."}[{{ interval }}])) / sum(rate(hubble_http_requests_total{destination_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100`,
		sluicev1beta1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(hubble_http_request_duration_seconds_bucket{destination_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) by (le)) * 1000`,
	},
}

// implementationGaps say why an implementation has no builtin metrics: its
// series do not separate the backends of one route rule, so a builtin
// would measure primary and canary together (or nothing) and pass or fail
// a release for the wrong reason.
var implementationGaps = map[Implementation]string{
	ImplementationEnvoyGateway:       "Envoy Gateway folds the backendRefs of a route rule into one Envoy cluster (httproute/<namespace>/<route>/rule/<n>), so envoy_cluster_upstream_rq cannot tell the canary from the primary",
	ImplementationKong:               "Kong merges the backendRefs of a route rule into one upstream, so kong_http_requests_total and kong_upstream_latency_ms cannot tell the canary from the primary",
	ImplementationNGINXGatewayFabric: "NGINX Gateway Fabric exports connection and request totals per NGINX instance (nginx_gateway_fabric_*, nginx_http_requests), not per backend Service",
}

// MetricsOf returns the builtin queries of an implementation, or nil and
// the reason it has none.
func MetricsOf(impl Implementation) (map[string]string, string) {
	if qs, ok := implementationMetrics[impl]; ok {
		return qs, ""
	}
	if why, ok := implementationGaps[impl]; ok {
		return nil, why
	}
	return nil, fmt.Sprintf("Gateway API implementation %q is unknown", impl)
}

// Option configures the gatewayapi router at registration.
type Option func(*options)

type options struct {
	implementation Implementation
}

// WithImplementation selects the implementation whose series the builtin
// metrics query (validate the value with ParseImplementation).
func WithImplementation(impl Implementation) Option {
	return func(o *options) { o.implementation = impl }
}

// registerMetrics registers the builtins of the selected implementation,
// or records why it has none: a Canary that uses a builtin then gets
// MetricsReady=False naming the implementation and asking for a
// MetricTemplate, instead of a query that finds no data and rolls a
// healthy release back.
func registerMetrics(r *router.Registry, o options, names ...string) {
	qs, why := MetricsOf(o.implementation)
	if qs == nil {
		r.RegisterMetricsUnavailable(why+" (--gateway-api-implementation="+string(o.implementation)+")", names...)
		return
	}
	r.RegisterMetrics(qs, names...)
}
