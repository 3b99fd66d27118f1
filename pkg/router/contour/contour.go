// Package contour is the router of the contour provider. It writes an
// HTTPProxy <svc> (projectcontour.io/v1, no virtualhost: users include it
// from their root HTTPProxy) whose routes send to <svc>-primary and
// <svc>-canary with weights, A/B testing as a first route with header
// conditions, and the timeout and retry policy of spec.service, as Flagger
// does.
package contour

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "contour"

// GVK is the group, version and kind of the HTTPProxy.
var GVK = schema.GroupVersionKind{Group: "projectcontour.io", Version: "v1", Kind: "HTTPProxy"}

// RBAC of the contour router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=projectcontour.io,resources=httpproxies,verbs=get;list;watch;create;update;patch

// Register adds the contour router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{client: c} }, Name)
	r.RegisterKinds(router.Kind(GVK))
	r.RegisterMetrics(Metrics, Name)
}

// Router drives the HTTPProxy of a Canary.
type Router struct {
	client client.Client
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.MatchRouter    = (*Router)(nil)
	_ router.Describer      = (*Router)(nil)
	_ router.SpecChecker    = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route by header.
func (r *Router) SupportsMatch() {}

// RoutingObjects describes the objects the router writes, for the docs.
func (r *Router) RoutingObjects() string {
	return "HTTPProxy `<svc>` (`projectcontour.io/v1`, weighted services, header conditions)"
}

// CheckSpec reports the matches an HTTPProxy condition cannot express.
func (r *Router) CheckSpec(c *sluicev1beta1.Canary) []string {
	if a := c.Spec.Analysis; a != nil {
		if _, err := headerConditions(a.Match); err != nil {
			return []string{err.Error()}
		}
	}
	return nil
}

// Reconcile creates the HTTPProxy (primary 100%) or brings Sluice's routes
// up to date, keeping the weights the live object holds.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if w, ok := readWeights(live, c); ok {
			routes = w
		}
	}
	return r.apply(ctx, c, live, routes)
}

// SetRoutes sets the weights of the primary and canary services (of the
// header-matched route for A/B testing).
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the contour provider cannot mirror traffic")
	}
	if routes.PrimaryWeight < 0 || routes.CanaryWeight < 0 || routes.PrimaryWeight+routes.CanaryWeight <= 0 {
		return fmt.Errorf("invalid weights: %s", routes)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, live, routes)
}

// GetRoutes reads the weights of Sluice's first route, as percentages.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	apex, primary, canary := c.ServiceNames()
	if live == nil {
		return router.Routes{}, fmt.Errorf("HTTPProxy %s does not exist", apex)
	}
	w, ok := readWeights(live, c)
	if !ok {
		return router.Routes{}, fmt.Errorf("HTTPProxy %s has no route to both %s and %s", apex, primary, canary)
	}
	return w, nil
}

// Finalize restores an HTTPProxy Sluice took over; one Sluice created is
// rewritten to send every request to the apex Service and released from
// the Canary, so the root HTTPProxies including it keep working.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, _, _ := c.ServiceNames()
	return router.Finalize(ctx, r.client, GVK, c.Namespace, apex, c.UID, func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return Released(c, live)
	})
}

func (r *Router) get(ctx context.Context, c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	live, found, err := router.Get(ctx, r.client, GVK, c.Namespace, apex)
	if err != nil || !found {
		return nil, err
	}
	return live, nil
}

func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, live *unstructured.Unstructured, routes router.Routes) error {
	desired, err := Render(c, routes, live)
	if err != nil {
		return err
	}
	if live != nil && upToDate(live, desired) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}
