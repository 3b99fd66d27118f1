// Package traefik is the router of the traefik provider. It splits traffic
// with a TraefikService <apex> whose weighted round robin sends requests to
// the <apex>-primary and <apex>-canary Services (users point their
// IngressRoutes at it). It supports weights only: request matching, mirroring
// and session affinity are reported as unsupported by router.Unsupported.
package traefik

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
const Name = sluicev1beta1.ProviderTraefik

// GVK is the group, version and kind of the TraefikService.
var GVK = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"}

// Option changes how the router writes the TraefikService.
type Option func(*options)

type options struct {
	nativeLB bool
}

// WithNativeLB sets nativeLB: true on the primary and canary entries of the
// weighted round robin, so Traefik sends traffic to the Services' ClusterIPs
// instead of their endpoints. Traefik ignores its nativeLBByDefault setting
// for TraefikServices, hence the per-entry field.
func WithNativeLB() Option {
	return func(o *options) { o.nativeLB = true }
}

func newOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// RBAC of the traefik router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=traefik.io,resources=traefikservices,verbs=get;list;watch;create;update;patch

// Register adds the traefik router to a registry.
func Register(r *router.Registry, opts ...Option) {
	o := newOptions(opts)
	r.Register(func(c client.Client) router.Router { return &Router{client: c, opts: o} }, Name)
	r.RegisterKinds(router.Kind(GVK))
	r.RegisterMetrics(Metrics, Name)
}

// Router drives the TraefikService of a Canary.
type Router struct {
	client client.Client
	opts   options
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.BaselineRouter = (*Router)(nil)
)

// SupportsBaseline marks the router as able to split three ways: the
// baseline gets its own weighted entry while it receives traffic.
func (r *Router) SupportsBaseline() {}

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// Reconcile creates the TraefikService (primary 100%, canary 0%) or brings
// the entries Sluice owns up to date, keeping the weights the live object
// holds. It writes nothing when the live object already matches.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if w, ok := rawWeights(live, c); ok {
			routes = w
		}
	}
	return r.apply(ctx, c, live, routes)
}

// SetRoutes sets the weights of the primary and canary entries. Mirroring is
// an error: Unsupported reports it before a release starts.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the traefik provider cannot mirror traffic")
	}
	if routes.PrimaryWeight < 0 || routes.CanaryWeight < 0 || routes.BaselineWeight < 0 {
		return fmt.Errorf("invalid weights: %s", routes)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, live, routes)
}

// GetRoutes reads the weights of the primary and canary entries of the live
// TraefikService, as percentages of their sum (Traefik weights are relative).
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	apex, primary, canary := c.ServiceNames()
	if live == nil {
		return router.Routes{}, fmt.Errorf("TraefikService %s does not exist", apex)
	}
	w, ok := rawWeights(live, c)
	if !ok {
		return router.Routes{}, fmt.Errorf("TraefikService %s does not route to both %s and %s in spec.weighted.services", apex, primary, canary)
	}
	return percent(w), nil
}

// Finalize restores the TraefikService as it was before Sluice took it
// over; one that Sluice created is rewritten to send every request to the
// apex Service (Released) and released from the Canary, so the
// IngressRoutes pointing at it keep working once the Canary is gone.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, _, _ := c.ServiceNames()
	return router.Finalize(ctx, r.client, GVK, c.Namespace, apex, c.UID, func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return released(c, live, r.opts)
	})
}

func (r *Router) get(ctx context.Context, c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	live, found, err := router.Get(ctx, r.client, GVK, c.Namespace, apex)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	return live, nil
}

// apply writes the TraefikService unless live already holds what it would write.
func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, live *unstructured.Unstructured, routes router.Routes) error {
	desired, err := render(c, routes, live, r.opts)
	if err != nil {
		return err
	}
	router.SetCanaryLabel(desired, c)
	if live != nil && upToDate(live, desired) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}
