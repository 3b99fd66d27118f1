// Package gloo is the router of the gloo provider, as Flagger's: two Gloo
// Upstreams (gloo.solo.io/v1) <ns>-<apex>-primaryupstream-<port> and
// <ns>-<apex>-canaryupstream-<port> for the primary and canary Services
// (settings copied from the Upstream of spec.upstreamRef), and a RouteTable
// (gateway.solo.io/v1) <apex>, which users delegate to from their
// VirtualService, splitting the requests between the two by weight. For A/B
// testing the analysis' header and method matches go to the weighted
// destinations and the other requests to the primary (Flagger's RouteTable
// had no route for them). Mirroring and session affinity are reported as
// unsupported.
package gloo

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "gloo"

// Kinds of the routing objects.
var (
	RouteTableGVK = schema.GroupVersionKind{Group: "gateway.solo.io", Version: "v1", Kind: "RouteTable"}
	UpstreamGVK   = schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"}
)

// RBAC of the gloo router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=gateway.solo.io,resources=routetables,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=gloo.solo.io,resources=upstreams,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// Register adds the gloo router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return New(c) }, Name)
	r.RegisterKinds(router.Kind(RouteTableGVK), router.Kind(UpstreamGVK))
	r.RegisterMetrics(Metrics, Name)
}

// New returns the gloo router with a client.
func New(c client.Client) *Router {
	return &Router{
		ObjectRouter: router.ObjectRouter{Client: c, Spec: routeTableSpec()},
		primary:      router.ObjectRouter{Client: c, Spec: upstreamSpec(c, false)},
		canary:       router.ObjectRouter{Client: c, Spec: upstreamSpec(c, true)},
	}
}

// Router drives the RouteTable and the Upstreams of a Canary.
type Router struct {
	router.ObjectRouter
	primary, canary router.ObjectRouter
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.MatchRouter    = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route A/B header and method matches.
func (r *Router) SupportsMatch() {}

// Reconcile brings the Upstreams, then the RouteTable that names them, up to date.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	for _, u := range []*router.ObjectRouter{&r.primary, &r.canary} {
		if err := u.Reconcile(ctx, c); err != nil {
			return err
		}
	}
	return r.ObjectRouter.Reconcile(ctx, c)
}

// Finalize releases the RouteTable to the apex Service (a kube destination,
// no Upstream needed), then restores Upstreams that existed before Sluice;
// the Upstreams Sluice created are left to the garbage collector.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if err := r.ObjectRouter.Finalize(ctx, c); err != nil {
		return err
	}
	for _, u := range []*router.ObjectRouter{&r.primary, &r.canary} {
		if err := u.Finalize(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// UpstreamName is the name of the primary's or the canary's Upstream.
func UpstreamName(c *sluicev1beta1.Canary, canary bool) string {
	apex, _, _ := c.ServiceNames()
	side := "primary"
	if canary {
		side = "canary"
	}
	return fmt.Sprintf("%s-%s-%supstream-%d", c.Namespace, apex, side, c.Spec.Service.Port)
}

// configFields are the fields of spec.upstreamRef's Upstream copied to
// Sluice's Upstreams (Flagger's list).
var configFields = []string{"labels", "sslConfig", "circuitBreakers", "connectionConfig", "loadBalancerConfig",
	"useHttp2", "initialStreamWindowSize", "initialConnectionWindowSize", "httpProxyHostName"}

func upstreamSpec(c client.Client, canary bool) router.ObjectSpec {
	return router.ObjectSpec{
		GVK:  UpstreamGVK,
		Name: func(cn *sluicev1beta1.Canary) string { return UpstreamName(cn, canary) },
		Render: func(ctx context.Context, cn *sluicev1beta1.Canary, _ router.Routes, _ *unstructured.Unstructured) (map[string]any, error) {
			_, primaryName, canaryName := cn.ServiceNames()
			name := primaryName
			if canary {
				name = canaryName
			}
			svc := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: name}, svc); err != nil {
				return nil, fmt.Errorf("failed to get Service %s for its Gloo Upstream: %w", name, err)
			}
			config, err := upstreamConfig(ctx, c, cn)
			if err != nil {
				return nil, err
			}
			return RenderUpstream(cn, svc, config), nil
		},
		// Upstreams hold no weights.
		Routes: func(*sluicev1beta1.Canary, *unstructured.Unstructured) (router.Routes, bool) {
			return router.Routes{}, false
		},
	}
}

// upstreamConfig reads the Upstream of spec.upstreamRef (nil without one).
func upstreamConfig(ctx context.Context, c client.Reader, cn *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	ref := cn.Spec.UpstreamRef
	if ref == nil {
		return nil, nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = cn.Namespace
	}
	u, found, err := router.Get(ctx, c, UpstreamGVK, ns, ref.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the Upstream %s/%s of spec.upstreamRef does not exist", ns, ref.Name)
	}
	return u, nil
}

// RenderUpstream returns the spec of an Upstream for a Service: the
// settings of config (spec.upstreamRef's Upstream, may be nil) and the kube
// service on the Canary's port, with the Service's selector.
func RenderUpstream(c *sluicev1beta1.Canary, svc *corev1.Service, config *unstructured.Unstructured) map[string]any {
	spec := map[string]any{}
	if config != nil {
		for _, f := range configFields {
			if v, ok, _ := unstructured.NestedFieldCopy(config.Object, "spec", f); ok {
				spec[f] = v
			}
		}
	}
	kube := map[string]any{"serviceName": svc.Name, "serviceNamespace": c.Namespace, "servicePort": int64(c.Spec.Service.Port)}
	if len(svc.Spec.Selector) > 0 {
		sel := map[string]any{}
		for k, v := range svc.Spec.Selector {
			sel[k] = v
		}
		kube["selector"] = sel
	}
	spec["kube"] = kube
	return spec
}

func routeTableSpec() router.ObjectSpec {
	return router.ObjectSpec{
		GVK:  RouteTableGVK,
		Name: func(c *sluicev1beta1.Canary) string { apex, _, _ := c.ServiceNames(); return apex },
		Render: func(_ context.Context, c *sluicev1beta1.Canary, routes router.Routes, _ *unstructured.Unstructured) (map[string]any, error) {
			return RenderRouteTable(c, routes)
		},
		Routes: routesOf,
		Release: func(c *sluicev1beta1.Canary, _ *unstructured.Unstructured) (map[string]any, error) {
			apex, _, _ := c.ServiceNames()
			dest := map[string]any{"kube": map[string]any{"ref": map[string]any{"name": apex, "namespace": c.Namespace}, "port": int64(c.Spec.Service.Port)}}
			return map[string]any{"routes": []any{map[string]any{
				"inheritablePathMatchers": true,
				"routeAction":             map[string]any{"single": dest},
			}}}, nil
		},
	}
}

// RenderRouteTable returns the spec of the RouteTable at routes: one route
// to the weighted Upstreams, preceded for A/B testing by the analysis'
// matches (Gloo takes the first route that matches), the unmatched
// requests then going to the primary.
func RenderRouteTable(c *sluicev1beta1.Canary, routes router.Routes) (map[string]any, error) {
	dest := func(canary bool, weight int32) any {
		return map[string]any{
			"destination": map[string]any{"upstream": map[string]any{"name": UpstreamName(c, canary), "namespace": c.Namespace}},
			"weight":      int64(weight),
		}
	}
	route := func(matchers []any, dests ...any) any {
		r := map[string]any{
			"inheritablePathMatchers": true,
			"routeAction":             map[string]any{"multi": map[string]any{"destinations": dests}},
		}
		if len(matchers) > 0 {
			r["matchers"] = matchers
		}
		return r
	}
	weighted := route(nil, dest(false, routes.PrimaryWeight), dest(true, routes.CanaryWeight))
	if c.Strategy(c.Spec.Provider) != sluicev1beta1.StrategyABTesting {
		return map[string]any{"routes": []any{weighted}}, nil
	}
	var matchers []any
	for i, m := range c.Spec.Analysis.Match {
		matcher, err := translate(m)
		if err != nil {
			return nil, fmt.Errorf("spec.analysis.match[%d]: %w", i, err)
		}
		matchers = append(matchers, matcher)
	}
	return map[string]any{"routes": []any{
		route(matchers, dest(false, routes.PrimaryWeight), dest(true, routes.CanaryWeight)),
		route(nil, dest(false, 100)),
	}}, nil
}

// translate turns an analysis match into a Gloo matcher (headers exact or
// regex, an exact method); other match fields are an error.
func translate(m sluicev1beta1.HTTPMatchRequest) (map[string]any, error) {
	if m.URI != nil || m.Scheme != nil || m.Authority != nil || m.Port != 0 || len(m.SourceLabels) > 0 || len(m.Gateways) > 0 ||
		len(m.QueryParams) > 0 || m.IgnoreURICase || len(m.WithoutHeaders) > 0 || m.SourceNamespace != "" {
		return nil, fmt.Errorf("the gloo provider matches on headers and method only (the path is the delegating VirtualService's)")
	}
	out := map[string]any{}
	names := make([]string, 0, len(m.Headers))
	for n := range m.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	var headers []any
	for _, n := range names {
		h := m.Headers[n]
		switch {
		case h.Exact != "":
			headers = append(headers, map[string]any{"name": n, "value": h.Exact})
		case h.Regex != "":
			headers = append(headers, map[string]any{"name": n, "value": h.Regex, "regex": true})
		default:
			return nil, fmt.Errorf("header %s: the gloo provider matches headers by exact or regex", n)
		}
	}
	if len(headers) > 0 {
		out["headers"] = headers
	}
	if m.Method != nil {
		if m.Method.Exact == "" {
			return nil, fmt.Errorf("method: the gloo provider matches methods exactly")
		}
		out["methods"] = []any{m.Method.Exact}
	}
	return out, nil
}

// routesOf reads the weights of the first route whose destinations are
// both Upstreams (a missing weight is 0 in Gloo's protobuf JSON).
func routesOf(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (router.Routes, bool) {
	primary, canary := UpstreamName(c, false), UpstreamName(c, true)
	rs, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	for _, r := range rs {
		rm, _ := r.(map[string]any)
		dests, _, _ := unstructured.NestedSlice(rm, "routeAction", "multi", "destinations")
		var out router.Routes
		var p, k bool
		for _, d := range dests {
			dm, _ := d.(map[string]any)
			name, _, _ := unstructured.NestedString(dm, "destination", "upstream", "name")
			w, _ := router.Weight(dm["weight"])
			switch name {
			case primary:
				out.PrimaryWeight, p = w, true
			case canary:
				out.CanaryWeight, k = w, true
			}
		}
		if p && k {
			return out, true
		}
	}
	return router.Routes{}, false
}
