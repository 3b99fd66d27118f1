package gatewayapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

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

// GRPCGVK is the kind of the routing object with routeKind GRPCRoute
// (standard channel since Gateway API v1.1).
var GRPCGVK = schema.GroupVersionKind{Group: gatewayv1.GroupVersion.Group, Version: gatewayv1.GroupVersion.Version, Kind: "GRPCRoute"}

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=grpcroutes,verbs=get;list;watch;create;update;patch

// grpcRouter drives the GRPCRoute of a Canary with routeKind GRPCRoute: the
// same rules as the HTTPRoute (sluice-weighted, sluice-ab and
// sluice-default, mirroring), with gRPC method and header matches. Rules
// users add are kept, as in the HTTPRoute.
type grpcRouter struct {
	client client.Client
}

// grpcUnsupported lists what a Canary asks of a GRPCRoute that it cannot
// express; the engine stalls the Canary with these messages.
func grpcUnsupported(c *sluicev1beta1.Canary, provider string) []string {
	var out []string
	svc := c.Spec.Service
	if a := c.Spec.Analysis; a != nil && a.SessionAffinity != nil {
		out = append(out, fmt.Sprintf("provider %s with routeKind GRPCRoute has no session affinity (gRPC clients do not keep cookies): remove analysis.sessionAffinity", provider))
	}
	if svc.Timeout != "" || svc.BackendTimeout != "" {
		out = append(out, "a GRPCRoute has no request timeouts: remove spec.service.timeout and backendTimeout (set deadlines in the gRPC clients)")
	}
	if svc.Rewrite != nil {
		out = append(out, "a GRPCRoute cannot rewrite the uri or authority: remove spec.service.rewrite")
	}
	if svc.CorsPolicy != nil {
		out = append(out, "a GRPCRoute has no CORS filter: remove spec.service.corsPolicy")
	}
	if _, err := translateGRPCMatches(svc.Match); err != nil {
		out = append(out, fmt.Sprintf("invalid spec.service.match for a GRPCRoute: %v", err))
	}
	if a := c.Spec.Analysis; a != nil {
		if _, err := translateGRPCMatches(a.Match); err != nil {
			out = append(out, fmt.Sprintf("invalid spec.analysis.match for a GRPCRoute: %v", err))
		}
	}
	return out
}

// GRPCRules renders the rules Sluice owns in the GRPCRoute of c for routes.
func GRPCRules(c *sluicev1beta1.Canary, routes router.Routes) ([]gatewayv1.GRPCRouteRule, error) {
	svc := c.Spec.Service
	_, primary, canary := c.ServiceNames()
	serviceMatches, err := translateGRPCMatches(svc.Match)
	if err != nil {
		return nil, fmt.Errorf("invalid spec.service.match: %w", err)
	}
	var filters []gatewayv1.GRPCRouteFilter
	if h := svc.Headers; h != nil {
		if h.Request != nil {
			filters = append(filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestHeaderModifier, RequestHeaderModifier: headerFilter(h.Request)})
		}
		if h.Response != nil {
			filters = append(filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterResponseHeaderModifier, ResponseHeaderModifier: headerFilter(h.Response)})
		}
	}
	for _, m := range svc.Mirror {
		filters = append(filters, gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: m.DeepCopy()})
	}
	backend := func(name string, weight int32) gatewayv1.GRPCBackendRef {
		return gatewayv1.GRPCBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
				Name: gatewayv1.ObjectName(name), Port: ptr(svc.Port),
			},
			Weight: ptr(weight),
		}}
	}
	rule := func(name string, matches []gatewayv1.GRPCRouteMatch, backends ...gatewayv1.GRPCBackendRef) gatewayv1.GRPCRouteRule {
		r := gatewayv1.GRPCRouteRule{Name: ptr(gatewayv1.SectionName(name)), Matches: matches, BackendRefs: backends}
		for _, f := range filters {
			r.Filters = append(r.Filters, *f.DeepCopy())
		}
		return r
	}
	weighted := []gatewayv1.GRPCBackendRef{backend(primary, routes.PrimaryWeight), backend(canary, routes.CanaryWeight)}
	var main gatewayv1.GRPCRouteRule
	var after []gatewayv1.GRPCRouteRule
	if c.Strategy(c.Spec.Provider) == sluicev1beta1.StrategyABTesting {
		analysisMatches, err := translateGRPCMatches(c.Spec.Analysis.Match)
		if err != nil {
			return nil, fmt.Errorf("invalid spec.analysis.match: %w", err)
		}
		main = rule(RuleAB, mergeGRPCMatches(analysisMatches, serviceMatches), weighted...)
		after = append(after, rule(RuleDefault, serviceMatches, backend(primary, 100)))
	} else {
		main = rule(RuleWeighted, serviceMatches, weighted...)
	}
	if routes.Mirrored {
		main.Filters = append(main.Filters, gatewayv1.GRPCRouteFilter{
			Type: gatewayv1.GRPCRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
				BackendRef: gatewayv1.BackendObjectReference{
					Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
					Name: gatewayv1.ObjectName(canary), Port: ptr(svc.Port),
				},
				Percent: ptr(c.MirrorWeight()),
			},
		})
	}
	return append([]gatewayv1.GRPCRouteRule{main}, after...), nil
}

// BuildGRPC renders the GRPCRoute Sluice applies for c at routes, holding
// only the fields Sluice owns (see Build for the HTTPRoute).
func BuildGRPC(c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	rules, err := GRPCRules(c, routes)
	if err != nil {
		return nil, fmt.Errorf("failed to render GRPCRoute %s: %w", apex, err)
	}
	original, err := router.OriginalOf(live, string(c.UID))
	if err != nil {
		return nil, fmt.Errorf("failed to record the original spec of GRPCRoute %s: %w", apex, err)
	}
	return buildGRPC(c, rules, live, original, original == "")
}

// ReleasedGRPC renders the GRPCRoute Sluice leaves behind when its Canary
// is deleted: Sluice's rules at primary 100% without mirroring, their
// backends replaced by the apex Service, the users' rules kept.
func ReleasedGRPC(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, _, _ := c.ServiceNames()
	rules, err := GRPCRules(c, router.Routes{PrimaryWeight: 100})
	if err != nil {
		return nil, fmt.Errorf("failed to render GRPCRoute %s: %w", apex, err)
	}
	for i := range rules {
		rules[i].BackendRefs = []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
				Name: gatewayv1.ObjectName(apex), Port: ptr(c.Spec.Service.Port),
			},
			Weight: ptr(int32(100)),
		}}}
	}
	return buildGRPC(c, rules, live, "", false)
}

// buildGRPC is build for a GRPCRoute: parentRefs, hostnames and apex
// metadata of the Canary, the original spec or the owner reference, the hash
// of Sluice's fields, then the users' rules of live (spec.rules is atomic).
func buildGRPC(c *sluicev1beta1.Canary, rules []gatewayv1.GRPCRouteRule, live *unstructured.Unstructured, original string, owned bool) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	route := &gatewayv1.GRPCRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: GRPCGVK.GroupVersion().String(), Kind: GRPCGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: c.Namespace},
		Spec: gatewayv1.GRPCRouteSpec{
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
		return nil, fmt.Errorf("failed to convert GRPCRoute %s: %w", apex, err)
	}
	delete(obj, "status")
	u := &unstructured.Unstructured{Object: normalize(obj).(map[string]any)}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if len(labels) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "labels")
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	annotations[HashAnnotation] = hex.EncodeToString(sum[:8])
	if err := unstructured.SetNestedStringMap(u.Object, annotations, "metadata", "annotations"); err != nil {
		return nil, err
	}
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

func (r *grpcRouter) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	if len(c.Spec.Service.GatewayRefs) == 0 && (live == nil || len(live.Spec.ParentRefs) == 0) {
		return fmt.Errorf("the %s provider needs spec.service.gatewayRefs: the Gateways (or, for a mesh, the Service) the GRPCRoute attaches to", c.Spec.Provider)
	}
	routes := router.Routes{PrimaryWeight: 100}
	if live != nil {
		if got, ok := grpcRoutesOf(c, live); ok {
			routes = got
		}
	}
	return r.write(ctx, c, live, routes)
}

func (r *grpcRouter) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.write(ctx, c, live, routes)
}

func (r *grpcRouter) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	apex, _, _ := c.ServiceNames()
	if live == nil {
		return router.Routes{}, fmt.Errorf("GRPCRoute %s not found in %s", apex, c.Namespace)
	}
	routes, ok := grpcRoutesOf(c, live)
	if !ok {
		return router.Routes{}, fmt.Errorf("GRPCRoute %s has no rule routing to the primary and the canary", apex)
	}
	return routes, nil
}

func (r *grpcRouter) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, _, _ := c.ServiceNames()
	return router.Finalize(ctx, r.client, GRPCGVK, c.Namespace, apex, c.UID, func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		return ReleasedGRPC(c, live)
	})
}

func (r *grpcRouter) get(ctx context.Context, c *sluicev1beta1.Canary) (*gatewayv1.GRPCRoute, error) {
	apex, _, _ := c.ServiceNames()
	live := &gatewayv1.GRPCRoute{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, live)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get GRPCRoute %s: %w", apex, err)
	}
	return live, nil
}

func (r *grpcRouter) write(ctx context.Context, c *sluicev1beta1.Canary, live *gatewayv1.GRPCRoute, routes router.Routes) error {
	var liveU *unstructured.Unstructured
	if live != nil {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
		if err != nil {
			return fmt.Errorf("failed to convert GRPCRoute %s: %w", live.Name, err)
		}
		liveU = &unstructured.Unstructured{Object: m}
	}
	desired, err := BuildGRPC(c, routes, liveU)
	if err != nil {
		return err
	}
	router.SetCanaryLabel(desired, c)
	if liveU != nil && upToDate(desired, liveU) {
		return nil
	}
	return router.Apply(ctx, r.client, desired)
}

// grpcRoutesOf reads the weights and the mirroring from the rule Sluice
// splits traffic with (sluice-ab, else sluice-weighted, else the first
// unnamed rule with both the primary and the canary).
func grpcRoutesOf(c *sluicev1beta1.Canary, route *gatewayv1.GRPCRoute) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	var found *gatewayv1.GRPCRouteRule
	for _, want := range []string{RuleAB, RuleWeighted, ""} {
		for i := range route.Spec.Rules {
			rule := &route.Spec.Rules[i]
			name := ""
			if rule.Name != nil {
				name = string(*rule.Name)
			}
			if name == want && (want != "" || grpcHasBackends(rule, primary, canary)) {
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
		}
	}
	for _, f := range found.Filters {
		if f.Type == gatewayv1.GRPCRouteFilterRequestMirror && f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == canary {
			out.Mirrored = true
		}
	}
	return out, true
}

func grpcHasBackends(rule *gatewayv1.GRPCRouteRule, primary, canary string) bool {
	var p, c bool
	for _, b := range rule.BackendRefs {
		p = p || string(b.Name) == primary
		c = c || string(b.Name) == canary
	}
	return p && c
}
