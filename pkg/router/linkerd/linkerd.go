// Package linkerd is the router of the linkerd provider: Linkerd (2.14 and
// later) routes mesh traffic with Gateway API HTTPRoutes attached to a
// Service (GAMMA, "mesh" mode), so the router is the gatewayapi router with
// the apex Service as the HTTPRoute's parent: the HTTPRoute <apex> with
// parentRefs [{group: "", kind: Service, name: <apex>, port}] splits the
// traffic sent to the apex Service between <apex>-primary and <apex>-canary
// by weight, and routes A/B header matches. Linkerd's HTTPRoutes have no
// request mirroring, and the sticky-session rules need header regular
// expressions on cookies, so mirroring and session affinity are reported as
// unsupported. Older Linkerd (the linkerd-smi extension) uses SMI's
// TrafficSplit: see package smi.
package linkerd

import (
	"context"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// Name is the provider name.
const Name = "linkerd"

// GVK is the kind of the routing object (the gatewayapi router's).
var GVK = gatewayapi.GVK

// RBAC of the linkerd router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch

// Register adds the linkerd router to a registry. The HTTPRoute kind is
// cached and watched through the gatewayapi router's registration (main
// registers both; registering the same kind twice would make the cache's
// per-kind options ambiguous).
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{inner: gatewayapi.New(c)} }, Name)
	r.RegisterMetrics(Metrics, Name)
}

// Router drives the HTTPRoute of a Canary in Linkerd's mesh mode.
type Router struct {
	inner *gatewayapi.Router
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.MatchRouter    = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route A/B header matches.
func (r *Router) SupportsMatch() {}

// Reconcile creates or updates the HTTPRoute, keeping its weights.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return r.inner.Reconcile(ctx, Mesh(c))
}

// SetRoutes sets the weights.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	return r.inner.SetRoutes(ctx, Mesh(c), routes)
}

// GetRoutes reads the weights from the live HTTPRoute.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	return r.inner.GetRoutes(ctx, Mesh(c))
}

// Finalize restores an HTTPRoute that existed before Sluice, and releases
// one Sluice created to the apex Service.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return r.inner.Finalize(ctx, Mesh(c))
}

// Mesh returns the Canary as the gatewayapi router sees it in mesh mode:
// without spec.service.gatewayRefs, the HTTPRoute's parent is the apex
// Service on the service port, and spec.service.hosts are left out (a mesh
// route matches the Service it is attached to; GAMMA has implementations
// ignore hostnames, and Flagger's hosts named the TrafficSplit's root
// service). Gateways named in gatewayRefs are kept with the hosts, for a
// route that serves both the mesh and an ingress Gateway.
func Mesh(c *sluicev1beta1.Canary) *sluicev1beta1.Canary {
	if len(c.Spec.Service.GatewayRefs) > 0 {
		return c
	}
	apex, _, _ := c.ServiceNames()
	out := c.DeepCopy()
	out.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{
		Group: ptr.To(gatewayv1.Group("")),
		Kind:  ptr.To(gatewayv1.Kind("Service")),
		Name:  gatewayv1.ObjectName(apex),
		Port:  ptr.To(c.Spec.Service.Port),
	}}
	out.Spec.Service.Hosts = nil
	return out
}
