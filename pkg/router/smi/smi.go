// Package smi is the router of the SMI providers smi:v1alpha1,
// smi:v1alpha2 and smi:v1alpha3 (Flagger's names), for meshes that split
// traffic with SMI's TrafficSplit (split.smi-spec.io): Linkerd before its
// Gateway API routes (the linkerd-smi extension serves v1alpha1 and
// v1alpha2), Open Service Mesh (v1alpha2 and up). As in Flagger, the
// TrafficSplit <apex> sends the traffic for the apex Service (or the first
// of spec.service.hosts) to <apex>-canary and <apex>-primary by weight. It
// supports weights only.
package smi

import (
	"context"
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Provider names, one per TrafficSplit version written.
const (
	NameV1Alpha1 = "smi:v1alpha1"
	NameV1Alpha2 = "smi:v1alpha2"
	NameV1Alpha3 = "smi:v1alpha3"
)

// Group is the API group of TrafficSplit.
const Group = "split.smi-spec.io"

// GVK returns the kind of the TrafficSplit at a version.
func GVK(version string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: Group, Version: version, Kind: "TrafficSplit"}
}

// RBAC of the smi router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get;list;watch;create;update;patch

// Register adds the SMI routers to a registry. The manager caches and
// watches the TrafficSplits of the version the mesh stores (v1alpha2, the
// version both linkerd-smi and Open Service Mesh serve); the others are
// read on demand.
func Register(r *router.Registry) {
	for name, version := range map[string]string{NameV1Alpha1: "v1alpha1", NameV1Alpha2: "v1alpha2", NameV1Alpha3: "v1alpha3"} {
		gvk := GVK(version)
		r.Register(func(c client.Client) router.Router {
			return &Router{ObjectRouter: router.ObjectRouter{Client: c, Spec: Spec(gvk)}}
		}, name)
	}
	r.RegisterKinds(router.Kind(GVK("v1alpha2")))
}

// Router drives the TrafficSplit of a Canary.
type Router struct {
	router.ObjectRouter
}

var _ router.WeightedRouter = (*Router)(nil)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// Spec describes the TrafficSplit of a Canary at a version.
func Spec(gvk schema.GroupVersionKind) router.ObjectSpec {
	name := func(c *sluicev1beta1.Canary) string {
		apex, _, _ := c.ServiceNames()
		return apex
	}
	return router.ObjectSpec{
		GVK:  gvk,
		Name: name,
		Render: func(_ context.Context, c *sluicev1beta1.Canary, routes router.Routes, _ *unstructured.Unstructured) (map[string]any, error) {
			_, primary, canary := c.ServiceNames()
			return split(c, backend(canary, routes.CanaryWeight), backend(primary, routes.PrimaryWeight)), nil
		},
		Routes: routesOf,
		Release: func(c *sluicev1beta1.Canary, _ *unstructured.Unstructured) (map[string]any, error) {
			// The apex as the only backend: what the mesh does without a
			// TrafficSplit, and what Linkerd's SMI examples write.
			apex, _, _ := c.ServiceNames()
			return split(c, backend(apex, 100)), nil
		},
	}
}

func split(c *sluicev1beta1.Canary, backends ...any) map[string]any {
	apex, _, _ := c.ServiceNames()
	service := apex
	if len(c.Spec.Service.Hosts) > 0 {
		service = c.Spec.Service.Hosts[0]
	}
	return map[string]any{"service": service, "backends": backends}
}

func backend(name string, weight int32) any {
	return map[string]any{"service": name, "weight": int64(weight)}
}

// routesOf reads the weights of the primary and canary backends: integers
// (v1alpha2 and up) or quantities (v1alpha1, e.g. "500m").
func routesOf(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	backends, _, _ := unstructured.NestedSlice(live.Object, "spec", "backends")
	var out router.Routes
	var p, k bool
	for _, item := range backends {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		w, err := weight(m["weight"])
		if err != nil {
			return router.Routes{}, false
		}
		switch m["service"] {
		case primary:
			out.PrimaryWeight, p = w, true
		case canary:
			out.CanaryWeight, k = w, true
		}
	}
	if !p || !k {
		return router.Routes{}, false
	}
	// Weights are read in thousandths: give them back as percentages, the
	// same traffic, so Reconcile rewrites nothing.
	return router.Percent(out), true
}

// weight reads a backend weight in thousandths when it is a quantity
// string, so "500m" and "1" keep their ratio; Percent makes percentages.
func weight(v any) (int32, error) {
	if s, ok := v.(string); ok {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return 0, fmt.Errorf("invalid weight %q: %w", s, err)
		}
		if w, ok := router.Weight(q.MilliValue()); ok {
			return w, nil
		}
	}
	if w, ok := router.Weight(v); ok && w <= math.MaxInt32/1000 {
		return w * 1000, nil
	}
	return 0, fmt.Errorf("invalid weight %v", v)
}
