// Package skipper is the router of the skipper provider (Zalando's Skipper
// ingress). It copies the user's Ingress (spec.ingressRef) into
// <ingress>-canary whose paths send to both <svc>-primary and <svc>-canary,
// split by the zalando.org/backend-weights annotation; the
// zalando.org/skipper-predicate Weight(100) makes Skipper prefer the canary
// Ingress's routes over the user's, and False() disables them when the
// canary has no traffic (as Flagger does). The user's Ingress is never written.
package skipper

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "skipper"

// The annotations Skipper reads.
const (
	BackendWeightsAnnotation = "zalando.org/backend-weights"
	PredicateAnnotation      = "zalando.org/skipper-predicate"
	// routeWeight makes the canary Ingress's routes win over the user's
	// Ingress's routes for the same host and path.
	routeWeight = "Weight(100)"
	// routeDisabled disables the canary Ingress's routes (canary at 0%).
	routeDisabled = "False()"
)

// RBAC of the skipper router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete

// Register adds the skipper router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{client: c} }, Name)
	r.RegisterKinds(router.Kind(router.IngressGVK))
}

// Router drives the canary Ingress of a Canary.
type Router struct {
	client client.Client
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.SpecChecker    = (*Router)(nil)
	_ router.Describer      = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// RoutingObjects describes the objects the router writes, for the docs.
func (r *Router) RoutingObjects() string {
	return "Ingress `<ingress>-canary` (copy of `spec.ingressRef` sending to `<svc>-primary` and `<svc>-canary`, `zalando.org/backend-weights`)"
}

// CheckSpec reports a missing spec.ingressRef.
func (r *Router) CheckSpec(c *sluicev1beta1.Canary) []string {
	return router.CheckIngressRef(c, Name)
}

// Reconcile creates or updates the canary Ingress from the user's Ingress,
// keeping the weights it holds (primary 100% when created).
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := router.CanaryIngress(ctx, r.client, c)
	if err != nil {
		return err
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if w, err := weights(live, c); err == nil {
			routes = w
		}
	}
	return r.apply(ctx, c, live, routes)
}

// SetRoutes sets the backend weights.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the skipper provider cannot mirror traffic")
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

// GetRoutes reads the backend weights, as percentages of their sum
// (Skipper's weights are relative).
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := router.CanaryIngress(ctx, r.client, c)
	if err != nil {
		return router.Routes{}, err
	}
	if live == nil {
		return router.Routes{}, fmt.Errorf("Ingress %s does not exist", router.CanaryIngressName(c)) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	return weights(live, c)
}

// Finalize deletes the canary Ingress Sluice created (as Flagger does): the
// user's Ingress serves the apex Service alone again.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return router.DeleteCanaryIngress(ctx, r.client, c)
}

func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, live *unstructured.Unstructured, routes router.Routes) error {
	src, err := router.SourceIngress(ctx, r.client, c)
	if err != nil {
		return err
	}
	desired, err := render(c, src, routes)
	if err != nil {
		return err
	}
	if live != nil && router.UpToDate(live, desired) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}

// render returns the canary Ingress: each path of the user's Ingress that
// sends to the apex becomes two, to the primary and to the canary.
func render(c *sluicev1beta1.Canary, src *networkingv1.Ingress, routes router.Routes) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	spec, err := router.IngressPaths(src, apex, func(p networkingv1.HTTPIngressPath) []networkingv1.HTTPIngressPath {
		toPrimary, toCanary := *p.DeepCopy(), *p.DeepCopy()
		toPrimary.Backend.Service.Name = primary
		toCanary.Backend.Service.Name = canary
		return []networkingv1.HTTPIngressPath{toPrimary, toCanary}
	})
	if err != nil {
		return nil, err
	}
	ann := router.UserAnnotations(src, BackendWeightsAnnotation)
	data, err := json.Marshal(map[string]int32{primary: routes.PrimaryWeight, canary: routes.CanaryWeight})
	if err != nil {
		return nil, fmt.Errorf("failed to render %s: %w", BackendWeightsAnnotation, err)
	}
	ann[BackendWeightsAnnotation] = string(data)
	first := routeWeight
	if routes.CanaryWeight == 0 {
		first = routeDisabled
	}
	ann[PredicateAnnotation] = withPredicate(src.Annotations[PredicateAnnotation], first)
	return router.IngressObject(c, src, ann, spec)
}

// withPredicate puts first before the user's predicates, dropping the ones
// Sluice sets.
func withPredicate(raw, first string) string {
	out := []string{first}
	for _, p := range strings.Split(raw, "&&") {
		p = strings.TrimSpace(p)
		if p == "" || p == routeWeight || p == routeDisabled {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, " && ")
}

// weights reads the backend weights of the primary and the canary.
func weights(live *unstructured.Unstructured, c *sluicev1beta1.Canary) (router.Routes, error) {
	_, primary, canary := c.ServiceNames()
	raw, ok := live.GetAnnotations()[BackendWeightsAnnotation]
	if !ok {
		return router.Routes{}, fmt.Errorf("Ingress %s has no %s annotation", live.GetName(), BackendWeightsAnnotation) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	var w map[string]float64
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return router.Routes{}, fmt.Errorf("the %s annotation of Ingress %s is not a JSON object of weights: %w", BackendWeightsAnnotation, live.GetName(), err)
	}
	p, okP := w[primary]
	k, okC := w[canary]
	if !okP || !okC || p < 0 || k < 0 || p+k <= 0 {
		return router.Routes{}, fmt.Errorf("the %s annotation of Ingress %s does not weigh both %s and %s: %s", BackendWeightsAnnotation, live.GetName(), primary, canary, raw)
	}
	cw := int32(math.Round(k * 100 / (p + k)))
	return router.Routes{PrimaryWeight: 100 - cw, CanaryWeight: cw}, nil
}
