// Package gatewayapi is the router of the gatewayapi provider: it drives an
// HTTPRoute (gateway.networking.k8s.io/v1) named after the apex Service,
// whose rules split traffic between <apex>-primary and <apex>-canary by
// weight, send A/B matches and sticky sessions to the canary, and mirror
// traffic to it. Rules that users add to the HTTPRoute are kept.
package gatewayapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = sluicev1beta1.ProviderGatewayAPI

// HashAnnotation records a hash of the fields Sluice last applied, so an
// unchanged route costs no write.
const HashAnnotation = "sluice.dev/spec-hash"

// GVK is the kind of the routing object.
var GVK = schema.GroupVersionKind{Group: gatewayv1.GroupVersion.Group, Version: gatewayv1.GroupVersion.Version, Kind: "HTTPRoute"}

// RBAC of the gatewayapi router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch

// Register adds the Gateway API router to a registry, under gatewayapi,
// gatewayapi:v1 and gatewayapi:v1beta1 (which writes its HTTPRoute through
// the v1beta1 API version). The
// manager's scheme needs gatewayv1.Install (sigs.k8s.io/gateway-api/apis/v1).
func Register(r *router.Registry, opts ...Option) {
	o := options{implementation: DefaultImplementation}
	for _, opt := range opts {
		opt(&o)
	}
	r.Register(func(c client.Client) router.Router { return &Router{client: c} },
		Name, sluicev1beta1.ProviderGatewayAPIV1, sluicev1beta1.ProviderGatewayAPIV1Beta)
	r.RegisterKinds(&gatewayv1.HTTPRoute{}, &gatewayv1.GRPCRoute{})
	registerMetrics(r, o, Name, sluicev1beta1.ProviderGatewayAPIV1, sluicev1beta1.ProviderGatewayAPIV1Beta)
}

// Router drives the HTTPRoute of a Canary.
type Router struct {
	client client.Client
}

var (
	_ router.WeightedRouter        = (*Router)(nil)
	_ router.MatchRouter           = (*Router)(nil)
	_ router.MirrorRouter          = (*Router)(nil)
	_ router.SessionAffinityRouter = (*Router)(nil)
	_ router.BaselineRouter        = (*Router)(nil)
)

// SupportsBaseline marks the router as able to split three ways (baseline.go).
func (r *Router) SupportsBaseline() {}

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route A/B matches.
func (r *Router) SupportsMatch() {}

// SupportsMirror marks the router as able to mirror traffic.
func (r *Router) SupportsMirror() {}

// SupportsSessionAffinity marks the router as able to pin users by cookie.
func (r *Router) SupportsSessionAffinity() {}

// Reconcile creates or updates the HTTPRoute, keeping the weights and the
// mirroring it holds (primary 100% when created).
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	if v := r.variant(c); v != nil {
		return v.Reconcile(ctx, c)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	if len(c.Spec.Service.GatewayRefs) == 0 && (live == nil || len(live.Spec.ParentRefs) == 0) {
		return fmt.Errorf("the %s provider needs spec.service.gatewayRefs: the Gateways (or, for a mesh, the Service) the HTTPRoute attaches to", c.Spec.Provider)
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if got, ok := routesOf(c, live); ok {
			routes = got
		}
	}
	return r.write(ctx, c, live, routes)
}

// SetRoutes sets the weights and the mirroring.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	if v := r.variant(c); v != nil {
		return v.SetRoutes(ctx, c, routes)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.write(ctx, c, live, routes)
}

// GetRoutes reads the weights and the mirroring from the live HTTPRoute.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	if v := r.variant(c); v != nil {
		return v.GetRoutes(ctx, c)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	apex, _, _ := c.ServiceNames()
	if live == nil {
		return router.Routes{}, fmt.Errorf("HTTPRoute %s not found in %s", apex, c.Namespace)
	}
	routes, ok := routesOf(c, live)
	if !ok {
		return router.Routes{}, fmt.Errorf("HTTPRoute %s has no rule routing to the primary and the canary", apex)
	}
	return routes, nil
}

// Finalize puts back the spec the HTTPRoute had before Sluice took it over;
// an HTTPRoute Sluice created is rewritten to route to the apex Service
// (Released) and released from the Canary, so it outlives it.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	if v := r.variant(c); v != nil {
		return v.Finalize(ctx, c)
	}
	apex, _, _ := c.ServiceNames()
	return router.Finalize(ctx, r.client, GVK, c.Namespace, apex, c.UID, func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return Released(c, live)
	})
}

// get reads the live HTTPRoute (typed, so the manager's cache serves it); nil when absent.
func (r *Router) get(ctx context.Context, c *sluicev1beta1.Canary) (*gatewayv1.HTTPRoute, error) {
	apex, _, _ := c.ServiceNames()
	live := &gatewayv1.HTTPRoute{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, live)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get HTTPRoute %s: %w", apex, err)
	}
	return live, nil
}

// write applies the HTTPRoute for routes unless the live one already matches.
func (r *Router) write(ctx context.Context, c *sluicev1beta1.Canary, live *gatewayv1.HTTPRoute, routes router.Routes) error {
	var liveU *unstructured.Unstructured
	if live != nil {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
		if err != nil {
			return fmt.Errorf("failed to convert HTTPRoute %s: %w", live.Name, err)
		}
		liveU = &unstructured.Unstructured{Object: m}
	}
	desired, err := Build(c, routes, liveU)
	if err != nil {
		return err
	}
	router.SetCanaryLabel(desired, c)
	if liveU != nil && upToDate(desired, liveU) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}

// Build renders the HTTPRoute Sluice applies for c at routes, as an object
// holding only the fields Sluice owns. live is the current HTTPRoute (nil
// when absent): its user rules are kept after Sluice's, and a route that
// existed before Sluice gets its spec recorded and no owner reference.
func Build(c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	rules, err := Rules(c, routes)
	if err != nil {
		return nil, fmt.Errorf("failed to render HTTPRoute %s: %w", apex, err)
	}
	original, err := router.OriginalOf(live, string(c.UID))
	if err != nil {
		return nil, fmt.Errorf("failed to record the original spec of HTTPRoute %s: %w", apex, err)
	}
	return build(c, rules, live, original, original == "")
}

// Released renders the HTTPRoute Sluice leaves behind when its Canary is
// deleted (Finalize of an HTTPRoute Sluice created): Sluice's rules, at
// primary 100% without mirroring or sticky-session rules, with their
// backends replaced by the apex Service on the service port (weight 100),
// the users' rules of live kept, and no owner reference.
func Released(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	rc := c.DeepCopy()
	rc.Status.SessionAffinityCookie, rc.Status.PrimarySessionAffinityCookie, rc.Status.PreviousSessionAffinityCookie = "", "", ""
	rules, err := Rules(rc, router.Routes{PrimaryWeight: 100})
	if err != nil {
		return nil, fmt.Errorf("failed to render HTTPRoute %s: %w", apex, err)
	}
	for i := range rules {
		rules[i].BackendRefs = []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
				Name: gatewayv1.ObjectName(apex), Port: ptr(c.Spec.Service.Port),
			},
			Weight: ptr(int32(100)),
		}}}
	}
	return build(rc, rules, live, "", false)
}

// build makes the object Sluice applies from its rules: the Canary's
// parentRefs, hostnames and apex metadata, the original spec (when not
// empty) or the Canary's owner reference (owned), the hash of these fields,
// then the users' rules of live.
func build(c *sluicev1beta1.Canary, rules []gatewayv1.HTTPRouteRule, live *unstructured.Unstructured, original string, owned bool) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion(c), Kind: GVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: c.Namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parentRefs(c.Spec.Service.GatewayRefs)},
			Rules:           rules,
		},
	}
	for _, h := range c.Spec.Service.Hosts {
		route.Spec.Hostnames = append(route.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	labels, annotations := map[string]string{}, map[string]string{}
	if m := c.Spec.Service.Apex; m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	if original != "" {
		annotations[router.OriginalAnnotation] = original
	}
	if owned {
		route.OwnerReferences = []metav1.OwnerReference{router.OwnerReference(c)}
	}
	route.Labels, route.Annotations = labels, annotations
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err != nil {
		return nil, fmt.Errorf("failed to convert HTTPRoute %s: %w", apex, err)
	}
	delete(obj, "status")
	u := &unstructured.Unstructured{Object: normalize(obj).(map[string]any)}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if len(labels) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "labels")
	}

	// The hash covers what Sluice owns, before the users' rules are added.
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	annotations[HashAnnotation] = hex.EncodeToString(sum[:8])
	if err := unstructured.SetNestedStringMap(u.Object, annotations, "metadata", "annotations"); err != nil {
		return nil, err
	}

	// spec.rules is an atomic list: the users' rules must be written along.
	all, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if live != nil {
		liveRules, _, _ := unstructured.NestedSlice(live.Object, "spec", "rules")
		for _, lr := range liveRules {
			if m, ok := lr.(map[string]any); ok && !isSluiceRule(m, primary, canary) {
				all = append(all, normalize(m))
			}
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, all, "spec", "rules"); err != nil {
		return nil, err
	}
	return u, nil
}

func parentRefs(refs []gatewayv1.ParentReference) []gatewayv1.ParentReference {
	var out []gatewayv1.ParentReference
	for _, r := range refs {
		r := *r.DeepCopy()
		// Written explicitly: the API server defaults them, and an
		// unchanged route must compare equal.
		if r.Group == nil {
			r.Group = ptr(gatewayv1.Group(gatewayv1.GroupName))
		}
		if r.Kind == nil {
			r.Kind = ptr(gatewayv1.Kind("Gateway"))
		}
		out = append(out, r)
	}
	return out
}

// isSluiceRule tells a rule Sluice generated (by its name, or for an unnamed
// rule by a backend that is the primary or canary Service) from a user's.
func isSluiceRule(rule map[string]any, primary, canary string) bool {
	if name, _, _ := unstructured.NestedString(rule, "name"); name != "" {
		return strings.HasPrefix(name, RulePrefix)
	}
	refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
	for _, ref := range refs {
		m, ok := ref.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(m, "name")
		kind, found, _ := unstructured.NestedString(m, "kind")
		if (name == primary || name == canary) && (!found || kind == "Service") {
			return true
		}
	}
	return false
}

// routesOf reads the weights and the mirroring from the rule Sluice splits
// traffic with: sluice-ab, else sluice-weighted, else (a route written by
// Flagger) the first unnamed rule with both the primary and the canary.
func routesOf(c *sluicev1beta1.Canary, route *gatewayv1.HTTPRoute) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	var found *gatewayv1.HTTPRouteRule
	for _, want := range []string{RuleAB, RuleWeighted, ""} {
		for i := range route.Spec.Rules {
			rule := &route.Spec.Rules[i]
			name := ""
			if rule.Name != nil {
				name = string(*rule.Name)
			}
			if name == want && (want != "" || hasBackends(rule, primary, canary)) {
				found = rule
				break
			}
		}
		if found != nil {
			break
		}
	}
	if found == nil {
		return router.Routes{}, false
	}
	var out router.Routes
	for _, b := range found.BackendRefs {
		w := int32(1)
		if b.Weight != nil {
			w = *b.Weight
		}
		switch string(b.Name) {
		case primary:
			out.PrimaryWeight = w
		case canary:
			out.CanaryWeight = w
		case c.BaselineServiceName():
			out.BaselineWeight = w
		}
	}
	for _, f := range found.Filters {
		if f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary {
			out.Mirrored = true
		}
	}
	return out, true
}

func hasBackends(rule *gatewayv1.HTTPRouteRule, primary, canary string) bool {
	var p, c bool
	for _, b := range rule.BackendRefs {
		p = p || string(b.Name) == primary
		c = c || string(b.Name) == canary
	}
	return p && c
}

// upToDate tells whether live already holds everything desired sets: the
// same hash of Sluice's fields, and every desired field with its value
// (fields the API server defaulted or users added may be extra).
func upToDate(desired, live *unstructured.Unstructured) bool {
	if desired.GetAnnotations()[HashAnnotation] != live.GetAnnotations()[HashAnnotation] {
		return false
	}
	d := normalize(desired.Object).(map[string]any)
	l := normalize(live.Object).(map[string]any)
	for _, k := range []string{"spec"} {
		if !subset(d[k], l[k]) {
			return false
		}
	}
	dm, _ := d["metadata"].(map[string]any)
	lm, _ := l["metadata"].(map[string]any)
	for _, k := range []string{"labels", "annotations", "ownerReferences"} {
		if dm[k] != nil && !subset(dm[k], lm[k]) {
			return false
		}
	}
	return true
}

// subset tells whether every field of want is in got with the same value;
// lists must have the same length and match element by element.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return fmt.Sprint(want) == fmt.Sprint(got) && (want == nil) == (got == nil)
	}
}

// normalize gives a value its generic JSON form (float64 numbers).
func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
