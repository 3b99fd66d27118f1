// Package nginx is the router of the nginx provider (ingress-nginx). It
// copies the user's Ingress (spec.ingressRef) into <ingress>-canary, whose
// paths send to the <svc>-canary Service, and drives ingress-nginx's canary
// annotations on it: canary-weight for a progressive canary,
// canary-by-header (-value, -pattern) and canary-by-cookie for A/B testing.
// The user's Ingress is never written: it keeps sending the rest of the
// traffic to the apex Service.
package nginx

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "nginx"

// DefaultAnnotationsPrefix is ingress-nginx's annotation prefix (its
// --annotations-prefix flag; Flagger's -ingress-annotations-prefix).
const DefaultAnnotationsPrefix = "nginx.ingress.kubernetes.io"

// Option changes how the router writes the canary Ingress.
type Option func(*Router)

// WithAnnotationsPrefix sets the annotation prefix, for an ingress-nginx run
// with another --annotations-prefix.
func WithAnnotationsPrefix(prefix string) Option {
	return func(r *Router) {
		if prefix != "" {
			r.prefix = prefix
		}
	}
}

// RBAC of the nginx router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete

// Register adds the nginx router to a registry.
func Register(r *router.Registry, opts ...Option) {
	r.Register(func(c client.Client) router.Router { return New(c, opts...) }, Name)
	r.RegisterKinds(router.Kind(router.IngressGVK))
	r.RegisterMetrics(Metrics, Name)
}

// New returns the router.
func New(c client.Client, opts ...Option) *Router {
	r := &Router{client: c, prefix: DefaultAnnotationsPrefix}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Router drives the canary Ingress of a Canary.
type Router struct {
	client client.Client
	prefix string
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.MatchRouter    = (*Router)(nil)
	_ router.SpecChecker    = (*Router)(nil)
	_ router.Describer      = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route by header or cookie.
func (r *Router) SupportsMatch() {}

// RoutingObjects describes the objects the router writes, for the docs.
func (r *Router) RoutingObjects() string {
	return "Ingress `<ingress>-canary` (copy of `spec.ingressRef` sending to `<svc>-canary`, ingress-nginx canary annotations)"
}

// CheckSpec reports a missing spec.ingressRef and matches ingress-nginx
// cannot express.
func (r *Router) CheckSpec(c *sluicev1beta1.Canary) []string {
	out := router.CheckIngressRef(c, Name)
	if a := c.Spec.Analysis; a != nil && len(a.Match) > 0 {
		if _, err := abMatch(a.Match); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// Reconcile creates or updates the canary Ingress from the user's Ingress,
// keeping the routing it holds (canary weight 0 when created).
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := router.CanaryIngress(ctx, r.client, c)
	if err != nil {
		return err
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if routes, err = r.read(live, c); err != nil {
			routes = router.Routes{PrimaryWeight: 100}
		}
	}
	return r.apply(ctx, c, live, routes)
}

// SetRoutes sets the canary annotations: the weight, or for A/B testing the
// header and cookie matches when the canary weight is above 0.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the nginx provider cannot mirror traffic")
	}
	if routes.PrimaryWeight < 0 || routes.CanaryWeight < 0 || routes.PrimaryWeight+routes.CanaryWeight != 100 {
		return fmt.Errorf("invalid weights: %s", routes)
	}
	live, err := router.CanaryIngress(ctx, r.client, c)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, live, routes)
}

// GetRoutes reads the routing of the canary Ingress: for A/B testing,
// canary 100% when the header or cookie match is set; otherwise the canary-weight.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := router.CanaryIngress(ctx, r.client, c)
	if err != nil {
		return router.Routes{}, err
	}
	if live == nil {
		return router.Routes{}, fmt.Errorf("Ingress %s does not exist", router.CanaryIngressName(c)) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	return r.read(live, c)
}

// Finalize deletes the canary Ingress Sluice created: the user's Ingress
// serves the apex Service alone again.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return router.DeleteCanaryIngress(ctx, r.client, c)
}

func (r *Router) key(suffix string) string { return r.prefix + "/" + suffix }

func (r *Router) read(live *unstructured.Unstructured, c *sluicev1beta1.Canary) (router.Routes, error) {
	ann := live.GetAnnotations()
	if a := c.Spec.Analysis; a != nil && len(a.Match) > 0 {
		_, header := ann[r.key("canary-by-header")]
		_, cookie := ann[r.key("canary-by-cookie")]
		if header || cookie {
			return router.Routes{CanaryWeight: 100}, nil
		}
	}
	v, ok := ann[r.key("canary-weight")]
	if !ok {
		return router.Routes{}, fmt.Errorf("Ingress %s has no %s annotation", live.GetName(), r.key("canary-weight")) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	w, err := strconv.Atoi(v)
	if err != nil || w < 0 || w > 100 {
		return router.Routes{}, fmt.Errorf("the %s annotation of Ingress %s is %q, not a weight from 0 to 100", r.key("canary-weight"), live.GetName(), v)
	}
	return router.Routes{PrimaryWeight: int32(100 - w), CanaryWeight: int32(w)}, nil //nolint:gosec // G115: 0 <= w <= 100, checked above.
}

func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, live *unstructured.Unstructured, routes router.Routes) error {
	src, err := router.SourceIngress(ctx, r.client, c)
	if err != nil {
		return err
	}
	desired, err := r.render(c, src, routes)
	if err != nil {
		return err
	}
	if live != nil && router.UpToDate(live, desired, r.routingKeys()...) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}
