package gatewayapi

import (
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
// user-owned HTTPRoute) cannot do; the engine stalls the Canary with them.
func (r *Router) UnsupportedFor(c *sluicev1beta1.Canary, provider string) []string {
	switch {
	case c.Spec.Service.GatewayRouteRef() != "":
		return refUnsupported(c, provider)
	case c.Spec.Service.GatewayRouteKind() == sluicev1beta1.GatewayRouteKindGRPC:
		return grpcUnsupported(c, provider)
	}
	return nil
}
