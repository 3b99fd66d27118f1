// Package knative is the router of the knative provider. As in Flagger, the
// Canary's target is a Knative Service (spec.targetRef: serving.knative.dev/v1
// Service): Knative itself keeps every revision, so there are no primary and
// canary workloads or Services. The router records the primary revision in
// the annotation sluice.dev/primary-revision and splits the Service's
// spec.traffic between that revision and the latest one (the canary).
//
// The engine (pkg/canary/workload_knative.go) releases a Knative Service
// target without a primary clone and calls Promote to promote a revision.
package knative

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
const Name = "knative"

// PrimaryRevisionAnnotation names, on the Knative Service, the revision
// that serves the primary's share (Flagger's flagger.app/primary-revision).
const PrimaryRevisionAnnotation = "sluice.dev/primary-revision"

// GVK is the group, version and kind of the Knative Service.
var GVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// RBAC of the knative router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=serving.knative.dev,resources=services,verbs=get;list;watch;patch

// Register adds the knative router to a registry. The Knative Services are
// the users' targets, not labelled by Sluice, so they are not registered as
// cached routing kinds: they are read from the API server.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{client: c} }, Name)
}

// Router drives the traffic of a Knative Service.
type Router struct {
	client client.Client
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.Describer      = (*Router)(nil)
	_ router.SpecChecker    = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// WithoutBlueGreen declares that a Knative revision has no <svc>-canary Service through
// which blue/green would analyse it without user traffic (the engine stalls
// such a Canary, pkg/canary/workload_knative.go).
func (r *Router) WithoutBlueGreen() {}

// RoutingObjects describes the objects the router writes, for the docs.
func (r *Router) RoutingObjects() string {
	return "the target Knative Service's `spec.traffic` (primary revision, latest revision) and annotation `sluice.dev/primary-revision`"
}

// CheckSpec reports a target that is not a Knative Service.
func (r *Router) CheckSpec(c *sluicev1beta1.Canary) []string {
	t := c.Spec.TargetRef
	if t.Kind != GVK.Kind || t.APIVersion != GVK.GroupVersion().String() {
		return []string{fmt.Sprintf("provider knative releases a Knative Service: spec.targetRef must be apiVersion %s, kind Service (not %s %s)", GVK.GroupVersion(), t.APIVersion, t.Kind)}
	}
	return nil
}

// Reconcile records the primary revision (the latest created one, the first
// time) and, when spec.traffic does not split between the primary and the
// latest revision, sends everything to the primary.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	svc, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	primary := svc.GetAnnotations()[PrimaryRevisionAnnotation]
	if primary == "" {
		if primary, err = latestRevision(svc); err != nil {
			return err
		}
	}
	routes, ok := readTraffic(svc, primary)
	if !ok {
		routes = router.Routes{PrimaryWeight: 100}
	}
	return r.apply(ctx, c, svc, primary, &routes)
}

// SetRoutes splits spec.traffic between the primary revision and the latest one.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the knative provider cannot mirror traffic")
	}
	if routes.PrimaryWeight < 0 || routes.CanaryWeight < 0 || routes.PrimaryWeight+routes.CanaryWeight != 100 {
		return fmt.Errorf("invalid weights: %s (Knative's traffic percentages sum to 100)", routes)
	}
	svc, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	primary, ok := svc.GetAnnotations()[PrimaryRevisionAnnotation]
	if !ok {
		return fmt.Errorf("Knative Service %s has no %s annotation: it is set by the router's Reconcile", svc.GetName(), PrimaryRevisionAnnotation) //nolint:staticcheck // ST1005: a product name starts the sentence.
	}
	return r.apply(ctx, c, svc, primary, &routes)
}

// GetRoutes reads spec.traffic (what Sluice and users wrote; status.traffic
// lags behind it until Knative has rolled the change out).
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	svc, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	primary, ok := svc.GetAnnotations()[PrimaryRevisionAnnotation]
	if !ok {
		return router.Routes{}, fmt.Errorf("Knative Service %s has no %s annotation", svc.GetName(), PrimaryRevisionAnnotation) //nolint:staticcheck // ST1005: a product name starts the sentence.
	}
	routes, ok := readTraffic(svc, primary)
	if !ok {
		return router.Routes{}, fmt.Errorf("the spec.traffic of Knative Service %s does not split between revision %s and the latest revision", svc.GetName(), primary)
	}
	return routes, nil
}

// Promote makes the latest created revision the primary.
func (r *Router) Promote(ctx context.Context, c *sluicev1beta1.Canary) error {
	svc, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	latest, err := latestRevision(svc)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, svc, latest, &router.Routes{PrimaryWeight: 100})
}

// PromoteRevision makes the named revision the primary and sends it all
// traffic: the engine's half of a promotion (pkg/canary/workload_knative.go).
// The engine names the revision it analysed rather than calling Promote,
// whose "latest" comes from the router's (cached) read and could be a
// revision created since, which nobody analysed.
func (r *Router) PromoteRevision(ctx context.Context, c *sluicev1beta1.Canary, revision string) error {
	if revision == "" {
		return fmt.Errorf("no revision to promote")
	}
	svc, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, svc, revision, &router.Routes{PrimaryWeight: 100})
}

// Finalize sends all traffic to the latest revision (the target as it is
// now, as the engine serves the target when a Canary is deleted) and
// removes the annotation. The Knative Service is the user's: it is never
// deleted. A missing Service is left alone.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	_, found, err := router.Get(ctx, r.client, GVK, c.Namespace, c.Spec.TargetRef.Name)
	if err != nil || !found {
		return err
	}
	return router.Apply(ctx, r.client, render(c, "", nil))
}

// FinalizeToRevision is Finalize for a Canary whose latest revision a
// rollback rejected: all traffic stays on the named (promoted) revision,
// pinned by name, and the annotation goes. Sending it to the latest
// revision, as Finalize does, would serve the rejected one once the Canary
// is gone; the user's next template change gets traffic when the user
// edits spec.traffic (or a new Canary releases it).
func (r *Router) FinalizeToRevision(ctx context.Context, c *sluicev1beta1.Canary, revision string) error {
	if revision == "" {
		return fmt.Errorf("no revision to keep serving")
	}
	_, found, err := router.Get(ctx, r.client, GVK, c.Namespace, c.Spec.TargetRef.Name)
	if err != nil || !found {
		return err
	}
	u := render(c, revision, &router.Routes{PrimaryWeight: 100})
	u.SetAnnotations(nil)
	return router.Apply(ctx, r.client, u)
}

func (r *Router) get(ctx context.Context, c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	svc, found, err := router.Get(ctx, r.client, GVK, c.Namespace, c.Spec.TargetRef.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("Knative Service %s not found in namespace %s", c.Spec.TargetRef.Name, c.Namespace) //nolint:staticcheck // ST1005: a product name starts the sentence.
	}
	return svc, nil
}

func latestRevision(svc *unstructured.Unstructured) (string, error) {
	rev, _, _ := unstructured.NestedString(svc.Object, "status", "latestCreatedRevisionName")
	if rev == "" {
		return "", fmt.Errorf("Knative Service %s has no revision yet (status.latestCreatedRevisionName is empty): waiting for Knative", svc.GetName()) //nolint:staticcheck // ST1005: a product name starts the sentence.
	}
	return rev, nil
}

// apply writes the annotation and spec.traffic unless svc holds them already.
func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, svc *unstructured.Unstructured, primary string, routes *router.Routes) error {
	if svc.GetAnnotations()[PrimaryRevisionAnnotation] == primary {
		if got, ok := readTraffic(svc, primary); ok && got == *routes {
			return nil
		}
	}
	return router.Apply(ctx, r.client, render(c, primary, routes))
}

// render returns the fields Sluice owns on the Knative Service: the primary
// revision annotation and spec.traffic; with no primary, all traffic to the
// latest revision and no annotation (Finalize).
func render(c *sluicev1beta1.Canary, primary string, routes *router.Routes) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(GVK)
	u.SetName(c.Spec.TargetRef.Name)
	u.SetNamespace(c.Namespace)
	traffic := []any{map[string]any{"latestRevision": true, "percent": int64(100)}}
	if primary != "" {
		u.SetAnnotations(map[string]string{PrimaryRevisionAnnotation: primary})
		traffic = []any{
			map[string]any{"revisionName": primary, "percent": int64(routes.PrimaryWeight)},
			map[string]any{"latestRevision": true, "percent": int64(routes.CanaryWeight)},
		}
	}
	u.Object["spec"] = map[string]any{"traffic": traffic}
	return u
}

// readTraffic reads the percentages of the primary revision and of the
// latest revision from spec.traffic; ok is false when either is missing.
func readTraffic(svc *unstructured.Unstructured, primary string) (router.Routes, bool) {
	traffic, _, _ := unstructured.NestedSlice(svc.Object, "spec", "traffic")
	var routes router.Routes
	var hasP, hasC bool
	for _, t := range traffic {
		m, ok := t.(map[string]any)
		if !ok {
			continue
		}
		p, _, _ := unstructured.NestedInt64(m, "percent")
		latest, _, _ := unstructured.NestedBool(m, "latestRevision")
		name, _, _ := unstructured.NestedString(m, "revisionName")
		switch {
		case latest && !hasC:
			routes.CanaryWeight, hasC = int32(p), true //nolint:gosec // G115: Knative percentages are 0 to 100 (CRD validation).
		case name == primary && !latest && !hasP:
			routes.PrimaryWeight, hasP = int32(p), true //nolint:gosec // G115: as above.
		}
	}
	return routes, hasP && hasC
}
