// Package kubernetes is the router of the kubernetes provider: no mesh, no
// routing object. It releases blue/green by switching the apex Service's
// selector between the primary's and the canary's pods.
package kubernetes

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = sluicev1beta1.ProviderKubernetes

// Register adds the kubernetes router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{client: c} }, Name)
	r.RegisterMetrics(Metrics, Name)
}

// Router switches the apex Service selector.
type Router struct {
	client client.Client
}

var _ router.Router = (*Router)(nil)

// Reconcile does nothing: the Services are the engine's, and the apex
// selector is only changed by SetRoutes.
func (r *Router) Reconcile(context.Context, *sluicev1beta1.Canary) error { return nil }

// Finalize does nothing: on deletion the engine points the apex Service at the target.
func (r *Router) Finalize(context.Context, *sluicev1beta1.Canary) error { return nil }

// SetRoutes points the apex Service at the canary's pods when the canary
// weight is 100, and at the primary's when it is 0. Other weights cannot be
// expressed with a Service selector and are an error.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the kubernetes provider cannot mirror traffic")
	}
	var from string
	switch {
	case routes.CanaryWeight == 100 && routes.PrimaryWeight == 0:
		from = "canary"
	case routes.CanaryWeight == 0 && routes.PrimaryWeight == 100:
		from = "primary"
	default:
		return fmt.Errorf("the kubernetes provider can only route all traffic to one side, not %s", routes)
	}
	apex, primary, canary, err := r.services(ctx, c)
	if err != nil {
		return err
	}
	want := primary.Spec.Selector
	if from == "canary" {
		want = canary.Spec.Selector
	}
	if maps.Equal(apex.Spec.Selector, want) {
		return nil
	}
	patch := client.MergeFrom(apex.DeepCopy())
	apex.Spec.Selector = maps.Clone(want)
	if err := r.client.Patch(ctx, apex, patch); err != nil {
		return fmt.Errorf("failed to point Service %s at the %s: %w", apex.Name, from, err)
	}
	return nil
}

// GetRoutes reads which side the apex Service selects.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	apex, _, canary, err := r.services(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	if len(canary.Spec.Selector) > 0 && maps.Equal(apex.Spec.Selector, canary.Spec.Selector) {
		return router.Routes{CanaryWeight: 100}, nil
	}
	return router.Routes{PrimaryWeight: 100}, nil
}

func (r *Router) services(ctx context.Context, c *sluicev1beta1.Canary) (apex, primary, canary *corev1.Service, err error) {
	names := [3]string{}
	names[0], names[1], names[2] = c.ServiceNames()
	svcs := [3]*corev1.Service{}
	for i, n := range names {
		svcs[i] = &corev1.Service{}
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: n}, svcs[i]); err != nil {
			return nil, nil, nil, fmt.Errorf("failed to get Service %s: %w", n, err)
		}
	}
	return svcs[0], svcs[1], svcs[2], nil
}
