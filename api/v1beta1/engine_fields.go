package v1beta1

import "strings"

// The server-side apply field managers of Sluice's writers. Each writer has
// its own, so the API server records which of them owns a field and GitSync
// can step aside from the fields the engine and the routers own instead of
// flipping them back on every interval.
const (
	// FieldManagerEngine writes the primary workload, the generated
	// Services, the primary autoscaler and the target's replicas.
	FieldManagerEngine = "sluice-engine"
	// FieldManagerRouter writes the routing objects (VirtualService,
	// DestinationRules, HTTPRoute, TraefikService) and, with the kubernetes
	// provider, the apex Service's selector.
	FieldManagerRouter = "sluice-router"
	// FieldManagerGitSync applies the objects built from Git.
	FieldManagerGitSync = "sluice-gitsync"
)

// CanaryLabel is set by the routers on every routing object they write, to
// the name of the Canary: the manager caches and watches only the routing
// objects carrying it, and maps their changes to that Canary.
const CanaryLabel = "sluice.dev/canary"

// +kubebuilder:object:generate=false

// OwnedFields names one object that the engine or a router writes for a
// Canary and the fields of it they own, as JSON pointers (RFC 6901).
type OwnedFields struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
	Paths     []string
}

// EngineOwnedFields lists, for a Canary, the fields that Sluice owns on
// objects a user may also keep in Git: the target's replica count (the
// engine scales the target to zero between releases), the apex Service's
// selector and ports (the engine points it at the primary, the kubernetes
// router switches it), and the routing fields of the objects the Canary's
// provider writes. GitSync leaves exactly these fields to the engine. The
// primary workload, the -primary and -canary Services and the primary
// autoscaler are Sluice's alone and are not listed.
//
// defaultProvider is the controller's --default-provider, used when
// spec.provider is empty; when both are empty the routing objects of every
// provider are listed.
func (in *Canary) EngineOwnedFields(defaultProvider string) []OwnedFields {
	apex, primary, canary := in.ServiceNames()
	ns := in.Namespace
	var out []OwnedFields
	switch in.Spec.TargetRef.Kind {
	case "", "Deployment", "StatefulSet":
		kind := in.Spec.TargetRef.Kind
		if kind == "" {
			kind = "Deployment"
		}
		out = append(out, OwnedFields{Group: "apps", Kind: kind, Namespace: ns, Name: in.Spec.TargetRef.Name,
			Paths: []string{"/spec/replicas"}})
	case "DaemonSet":
		out = append(out, OwnedFields{Group: "apps", Kind: "DaemonSet", Namespace: ns, Name: in.Spec.TargetRef.Name,
			Paths: []string{"/spec/template/spec/nodeSelector/" + escapePointer(ScaleToZeroNodeSelector)}})
	}
	out = append(out, OwnedFields{Kind: "Service", Namespace: ns, Name: apex, Paths: []string{"/spec/selector", "/spec/ports"}})
	provider := in.Spec.Provider
	if provider == "" {
		provider = defaultProvider
	}
	all := provider == ""
	if all || provider == ProviderIstio {
		out = append(out, OwnedFields{Group: "networking.istio.io", Kind: "VirtualService", Namespace: ns, Name: apex,
			Paths: []string{"/spec/hosts", "/spec/gateways", "/spec/http", "/spec/tcp"}})
		rules := []string{primary, canary}
		if in.BaselineEnabled() {
			rules = append(rules, in.BaselineServiceName())
		}
		for _, name := range rules {
			out = append(out, OwnedFields{Group: "networking.istio.io", Kind: "DestinationRule", Namespace: ns, Name: name,
				Paths: []string{"/spec/host", "/spec/trafficPolicy"}})
		}
	}
	if all || provider == ProviderTraefik {
		out = append(out, OwnedFields{Group: "traefik.io", Kind: "TraefikService", Namespace: ns, Name: apex,
			Paths: []string{"/spec/weighted/services"}})
	}
	// A user-owned route (gatewayAPI.routeRef) is the user's: GitSync must
	// apply its rules (the router swaps only backendRefs, see
	// pkg/router/gatewayapi/routeref.go); a generated one is an HTTPRoute or
	// a GRPCRoute. linkerd writes the same HTTPRoute, attached to the apex Service.
	if (all || provider == ProviderGatewayAPI || provider == ProviderGatewayAPIV1 || provider == ProviderGatewayAPIV1Beta || provider == "linkerd") && in.Spec.Service.GatewayRouteRef() == "" {
		out = append(out, OwnedFields{Group: "gateway.networking.k8s.io", Kind: in.Spec.Service.GatewayRouteKind(), Namespace: ns, Name: apex,
			Paths: []string{"/spec/parentRefs", "/spec/hostnames", "/spec/rules"}})
	}
	// Batch 2 of Flagger's routers: the objects named after the apex that a
	// user may have kept (apisix writes its own route, the gloo Upstreams are Sluice's).
	if all || strings.HasPrefix(provider, "smi:") {
		out = append(out, OwnedFields{Group: "split.smi-spec.io", Kind: "TrafficSplit", Namespace: ns, Name: apex, Paths: []string{"/spec/service", "/spec/backends"}})
	}
	if all || provider == "kuma" {
		out = append(out, OwnedFields{Group: "kuma.io", Kind: "MeshHTTPRoute", Namespace: ns, Name: apex, Paths: []string{"/spec/targetRef", "/spec/to"}})
	}
	if all || provider == "gloo" {
		out = append(out, OwnedFields{Group: "gateway.solo.io", Kind: "RouteTable", Namespace: ns, Name: apex, Paths: []string{"/spec/routes"}})
	}
	return out
}

// escapePointer escapes a key for a JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
