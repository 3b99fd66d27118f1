package gatewayapi

import "sigs.k8s.io/controller-runtime/pkg/client"

// New returns the Gateway API router with a client, for routers that drive
// an HTTPRoute the same way under another provider name (linkerd).
func New(c client.Client) *Router {
	return &Router{client: c}
}
