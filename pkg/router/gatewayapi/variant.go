package gatewayapi

import (
	"fmt"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

var _ router.CanaryCapabilities = (*Router)(nil)

// variant returns the router of a Canary that does not use the generated
// HTTPRoute: the user-owned HTTPRoute of spec.service.gatewayAPI.routeRef,
// or a generated GRPCRoute; nil for the generated HTTPRoute. The provider
// names stay the same, so the choice is per Canary, not per registration.
func (r *Router) variant(c *sluicev1beta1.Canary) router.Router {
	switch {
	case c.Spec.Service.GatewayRouteRef() != "":
		return &refRouter{client: r.client}
	case c.Spec.Service.GatewayRouteKind() == sluicev1beta1.GatewayRouteKindGRPC:
		return &grpcRouter{client: r.client}
	}
	return nil
}

// UnsupportedFor lists what this Canary asks that its variant (GRPCRoute,
// user-owned HTTPRoute) cannot do, and the several ports of portDiscovery
// that no generated route can route (multiport.go); the engine stalls the
// Canary with them.
//
// The generated HTTPRoute alone carries a baseline backend (render.go): a
// variant asked for a baseline must say so rather than measure a baseline
// that receives no traffic.
func (r *Router) UnsupportedFor(c *sluicev1beta1.Canary, provider string) []string {
	var out []string
	switch {
	case c.Spec.Service.GatewayRouteRef() != "":
		out = refUnsupported(c, provider)
		if baseline(c) {
			out = append(out, fmt.Sprintf("provider %s with spec.service.gatewayAPI.routeRef cannot split traffic three ways (it only swaps the apex backendRef of the user's HTTPRoute): remove analysis.baseline or remove routeRef", provider))
		}
	case c.Spec.Service.GatewayRouteKind() == sluicev1beta1.GatewayRouteKindGRPC:
		out = grpcUnsupported(c, provider)
		if baseline(c) {
			out = append(out, fmt.Sprintf("provider %s with routeKind GRPCRoute cannot split traffic three ways yet: remove analysis.baseline or use an HTTPRoute", provider))
		}
		out = append(out, multiPortUnsupported(c, provider)...)
	default:
		out = multiPortUnsupported(c, provider)
	}
	return out
}

func baseline(c *sluicev1beta1.Canary) bool {
	return c.Spec.Analysis != nil && c.Spec.Analysis.Baseline
}
