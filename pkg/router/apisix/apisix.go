// Package apisix is the router of the apisix provider, as Flagger's: the
// ApisixRoute named by spec.routeRef (the user's, left untouched) has an
// http route sending to the apex Service; Sluice clones that http route
// into its own ApisixRoute <routeRef>-<apex>-canary, at a higher priority,
// with two weighted backends, <apex>-primary and <apex>-canary. It splits
// traffic by weight only: request matching, mirroring and session affinity
// are reported as unsupported by router.Unsupported.
package apisix

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "apisix"

// GVK is the kind of the user's and Sluice's routes.
var GVK = schema.GroupVersionKind{Group: "apisix.apache.org", Version: "v2", Kind: "ApisixRoute"}

// Priority of Sluice's http route: above the user's, so APISIX prefers it
// for the same match (Flagger's value).
const Priority = 10000

// RBAC of the apisix router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=apisix.apache.org,resources=apisixroutes,verbs=get;list;watch;create;update;patch

// Register adds the apisix router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router {
		return &Router{ObjectRouter: router.ObjectRouter{Client: c, Spec: spec(c)}}
	}, Name)
	r.RegisterKinds(router.Kind(GVK))
	r.RegisterMetrics(Metrics, Name)
}

// Router drives the canary ApisixRoute of a Canary.
type Router struct {
	router.ObjectRouter
}

var _ router.WeightedRouter = (*Router)(nil)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// RouteName is the name of the ApisixRoute Sluice creates for a Canary.
func RouteName(c *sluicev1beta1.Canary) string {
	apex, _, _ := c.ServiceNames()
	ref := ""
	if c.Spec.RouteRef != nil {
		ref = c.Spec.RouteRef.Name
	}
	return fmt.Sprintf("%s-%s-canary", ref, apex)
}

func spec(c client.Client) router.ObjectSpec {
	return router.ObjectSpec{
		GVK:  GVK,
		Name: RouteName,
		Render: func(ctx context.Context, canary *sluicev1beta1.Canary, routes router.Routes, _ *unstructured.Unstructured) (map[string]any, error) {
			user, err := userRoute(ctx, c, canary)
			if err != nil {
				return nil, err
			}
			return Render(canary, user, routes)
		},
		Routes:  routesOf,
		Release: Released,
	}
}

// userRoute reads the ApisixRoute of spec.routeRef.
func userRoute(ctx context.Context, c client.Reader, canary *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	ref := canary.Spec.RouteRef
	if ref == nil || ref.Name == "" {
		return nil, fmt.Errorf("the apisix provider needs spec.routeRef: the ApisixRoute (apisix.apache.org/v2) whose http route sends to the apex Service")
	}
	ns := ref.Namespace
	if ns == "" {
		ns = canary.Namespace
	}
	u, found, err := router.Get(ctx, c, GVK, ns, ref.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("ApisixRoute %s/%s of spec.routeRef does not exist", ns, ref.Name)
	}
	return u, nil
}

// Render returns the spec of Sluice's ApisixRoute at routes, from the
// user's ApisixRoute: its ingressClassName, and the http route that sends
// to the apex Service (with one backend), at Priority, with the primary and
// canary backends in place of the apex one (service port, resolve
// granularity and subset carried over).
func Render(c *sluicev1beta1.Canary, user *unstructured.Unstructured, routes router.Routes) (map[string]any, error) {
	apex, primary, canary := c.ServiceNames()
	http, _, _ := unstructured.NestedSlice(user.Object, "spec", "http")
	var target map[string]any
	for _, item := range http {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		if names := backendNames(m); len(names) > 0 && contains(names, apex) {
			target = runtime.DeepCopyJSONValue(m).(map[string]any)
			break
		}
	}
	if target == nil {
		return nil, fmt.Errorf("ApisixRoute %s of spec.routeRef has no http route with the backend %s (the apex Service)", user.GetName(), apex)
	}
	backends, _, _ := unstructured.NestedSlice(target, "backends")
	if len(backends) != 1 {
		return nil, fmt.Errorf("the http route %v of ApisixRoute %s has %d backends: the apisix provider needs exactly one, the apex Service %s", target["name"], user.GetName(), len(backends), apex)
	}
	base, _ := backends[0].(map[string]any)
	backend := func(name string, weight int32) map[string]any {
		b := map[string]any{"serviceName": name, "servicePort": base["servicePort"], "weight": int64(weight)}
		for _, k := range []string{"resolveGranularity", "subset"} {
			if v, ok := base[k]; ok {
				b[k] = runtime.DeepCopyJSONValue(v)
			}
		}
		return b
	}
	target["priority"] = int64(Priority)
	target["backends"] = []any{backend(primary, routes.PrimaryWeight), backend(canary, routes.CanaryWeight)}
	spec := map[string]any{"http": []any{target}}
	if class, ok, _ := unstructured.NestedString(user.Object, "spec", "ingressClassName"); ok {
		spec["ingressClassName"] = class
	}
	return spec, nil
}

// Released returns the spec Sluice leaves in its ApisixRoute when the
// Canary is deleted: the http route with one backend, the apex Service at
// weight 100.
func Released(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (map[string]any, error) {
	apex, primary, _ := c.ServiceNames()
	spec := map[string]any{}
	if s, ok := live.Object["spec"].(map[string]any); ok {
		spec = runtime.DeepCopyJSONValue(s).(map[string]any)
	}
	http, _, _ := unstructured.NestedSlice(spec, "http")
	for i, item := range http {
		m, ok := item.(map[string]any)
		if !ok || !contains(backendNames(m), primary) {
			continue
		}
		backends, _, _ := unstructured.NestedSlice(m, "backends")
		b := map[string]any{"serviceName": apex, "weight": int64(100)}
		for _, item := range backends {
			if old, ok := item.(map[string]any); ok && old["serviceName"] == primary {
				for k, v := range old {
					if k != "serviceName" && k != "weight" {
						b[k] = v
					}
				}
			}
		}
		m["backends"] = []any{b}
		http[i] = m
	}
	spec["http"] = http
	return spec, nil
}

// routesOf reads the weights of the primary and canary backends of the
// http route that holds them (APISIX's default weight is 100).
func routesOf(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	http, _, _ := unstructured.NestedSlice(live.Object, "spec", "http")
	for _, item := range http {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		names := backendNames(m)
		if !contains(names, primary) || !contains(names, canary) {
			continue
		}
		var out router.Routes
		backends, _, _ := unstructured.NestedSlice(m, "backends")
		for _, b := range backends {
			bm, _ := b.(map[string]any)
			w := int32(100)
			if v, ok := router.Weight(bm["weight"]); ok {
				w = v
			}
			switch bm["serviceName"] {
			case primary:
				out.PrimaryWeight = w
			case canary:
				out.CanaryWeight = w
			}
		}
		return out, true
	}
	return router.Routes{}, false
}

func backendNames(http map[string]any) []string {
	backends, _, _ := unstructured.NestedSlice(http, "backends")
	var out []string
	for _, b := range backends {
		if m, ok := b.(map[string]any); ok {
			if n, ok := m["serviceName"].(string); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
