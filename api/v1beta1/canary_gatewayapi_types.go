package v1beta1

// Route kinds the gatewayapi provider generates (spec.service.gatewayAPI.routeKind).
const (
	// GatewayRouteKindHTTP generates an HTTPRoute (the default).
	GatewayRouteKindHTTP = "HTTPRoute"
	// GatewayRouteKindGRPC generates a GRPCRoute.
	GatewayRouteKindGRPC = "GRPCRoute"
)

// GatewayAPIRouting tunes the routing objects of the gatewayapi providers.
//
// +kubebuilder:validation:XValidation:rule="!has(self.routeRef) || !has(self.routeKind) || self.routeKind == 'HTTPRoute'",message="spec.service.gatewayAPI.routeRef points at a user-owned HTTPRoute: remove routeKind GRPCRoute or routeRef"
type GatewayAPIRouting struct {
	// routeKind is the kind of route Sluice generates: HTTPRoute (default)
	// or GRPCRoute (gRPC services; spec.service.match then matches the gRPC
	// service and method through the uri /<service>/<method> and headers).
	// +kubebuilder:validation:Enum=HTTPRoute;GRPCRoute
	// +optional
	RouteKind string `json:"routeKind,omitempty"`

	// routeRef names an HTTPRoute in the Canary's namespace that the user
	// keeps (in Git or by hand). Sluice generates no route then: in every
	// rule of that HTTPRoute whose backendRefs send to the apex Service, it
	// replaces that backendRef by the primary and the canary Services (same
	// port) with weights, and leaves everything else (matches, filters,
	// timeouts, other rules, hostnames, parentRefs) to the user. At
	// finalisation the rules send to the apex Service again.
	// +optional
	RouteRef *GatewayRouteReference `json:"routeRef,omitempty"`
}

// GatewayRouteReference names a route in the Canary's namespace.
type GatewayRouteReference struct {
	// name of the HTTPRoute.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`
}

// GatewayRouteKind is the kind of route the gatewayapi provider generates.
func (s CanaryService) GatewayRouteKind() string {
	if s.GatewayAPI != nil && s.GatewayAPI.RouteKind != "" {
		return s.GatewayAPI.RouteKind
	}
	return GatewayRouteKindHTTP
}

// GatewayRouteRef is the name of the user-owned HTTPRoute, or "" when Sluice
// generates the route.
func (s CanaryService) GatewayRouteRef() string {
	if s.GatewayAPI != nil && s.GatewayAPI.RouteRef != nil {
		return s.GatewayAPI.RouteRef.Name
	}
	return ""
}
