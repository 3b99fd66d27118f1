package gatewayapi

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// refRouter drives a user-owned HTTPRoute (spec.service.gatewayAPI.routeRef).
//
// The user keeps the route (in Git, through GitSync or kubectl apply); Sluice
// only swaps backendRefs. In every rule whose sole backendRef is the apex
// Service, that backendRef becomes two: the primary and the canary Services
// on the same port, with the user's backendRef filters, weighted. At rest
// (primary 100%) the rule sends to the apex Service again, exactly as the
// user wrote it: the apex Service selects the primary's pods, so that is the
// same traffic, and the live route then equals the user's manifest.
//
// Why the user's fields survive Sluice, and Sluice's split survives the user:
//   - spec.rules is an atomic list in the HTTPRoute CRD, so no server-side
//     apply field manager can own only the backendRefs of a rule; whoever
//     writes spec.rules writes all of it. Sluice therefore never applies its
//     own rendering: it reads the live route and writes back the same rules
//     with only the apex backendRefs swapped, as a JSON merge patch guarded
//     by the resourceVersion it read (optimistic lock). Filters, matches,
//     timeouts, extensionRefs, other rules, hostnames and parentRefs are
//     copied from what is live at that moment, and a user's write in
//     between makes the patch fail with a conflict and be redone on the
//     fresh object, so nothing the user wrote is lost.
//   - A patch (an Update operation) never removes fields it does not name,
//     unlike an apply of a partial object, so Sluice cannot delete the
//     user's rules by not mentioning them.
//   - When the user applies their manifest again (GitSync on a new
//     revision, kubectl apply --server-side), the manifest's rules replace
//     the live ones and send to the apex Service again: 100% primary, the
//     stable version, never a broken route. The route carries the
//     sluice.dev/canary label, so the change enqueues the Canary; GetRoutes
//     reads primary 100% and the engine sets the step's weights back
//     (healRoutes), now on the user's new rules. Between revisions GitSync
//     does not treat Sluice's swap as drift (changes of the sluice-router
//     field manager are not drift), so it does not flip the split back on
//     every interval; kubectl's client-side apply sends no rules at all for
//     a manifest whose rules did not change.
//   - The label is Sluice's alone: an apply of the user's manifest without
//     it leaves it, as it was written by another field manager.
//
// Multi-port: each swapped backendRef keeps its own port, so a route with
// one rule per Service port (by hostname or path) is routed on every port.
type refRouter struct {
	client client.Client
}

// refUnsupported lists what a Canary with routeRef asks that a user-owned
// route cannot give: Sluice does not add rules, matches or filters to it.
func refUnsupported(c *sluicev1beta1.Canary, provider string) []string {
	var out []string
	with := fmt.Sprintf("provider %s with spec.service.gatewayAPI.routeRef", provider)
	if c.Strategy(provider) == sluicev1beta1.StrategyABTesting {
		out = append(out, with+" cannot route by request match (Sluice only swaps the backendRefs of the user's HTTPRoute): remove analysis.match or remove routeRef")
	}
	if a := c.Spec.Analysis; a != nil && a.Mirror {
		out = append(out, with+" cannot mirror traffic (it adds no filters to the user's HTTPRoute): remove analysis.mirror")
	}
	if a := c.Spec.Analysis; a != nil && a.SessionAffinity != nil {
		out = append(out, with+" has no session affinity (it adds no rules to the user's HTTPRoute): remove analysis.sessionAffinity")
	}
	svc := c.Spec.Service
	var generated []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"hosts", len(svc.Hosts) > 0}, {"gatewayRefs", len(svc.GatewayRefs) > 0}, {"match", len(svc.Match) > 0},
		{"headers", svc.Headers != nil}, {"rewrite", svc.Rewrite != nil}, {"corsPolicy", svc.CorsPolicy != nil},
		{"timeout", svc.Timeout != ""}, {"backendTimeout", svc.BackendTimeout != ""}, {"mirror", len(svc.Mirror) > 0},
	} {
		if f.set {
			generated = append(generated, "spec.service."+f.name)
		}
	}
	if len(generated) > 0 {
		out = append(out, fmt.Sprintf("%s shape a generated route, and routeRef names a route the user keeps: set them in HTTPRoute %s instead and remove %v",
			joinAnd(generated), svc.GatewayRouteRef(), generated))
	}
	return out
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}

func (r *refRouter) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	routes, err := refRoutesOf(c, live)
	if err != nil {
		return err
	}
	return r.write(ctx, c, live, routes)
}

func (r *refRouter) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.write(ctx, c, live, routes)
}

func (r *refRouter) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	live, err := r.get(ctx, c)
	if err != nil {
		return router.Routes{}, err
	}
	return refRoutesOf(c, live)
}

// Finalize sends the swapped rules to the apex Service again and removes
// Sluice's label; the rest of the route is the user's and stays.
func (r *refRouter) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	rules, _, err := SwapBackends(c, live.Spec.Rules, router.Routes{PrimaryWeight: 100})
	if err != nil {
		return err
	}
	_, labelled := live.Labels[sluicev1beta1.CanaryLabel]
	if !labelled && equality.Semantic.DeepEqual(rules, live.Spec.Rules) {
		return nil
	}
	patch := client.MergeFromWithOptions(live.DeepCopy(), client.MergeFromWithOptimisticLock{})
	live.Spec.Rules = rules
	delete(live.Labels, sluicev1beta1.CanaryLabel)
	if err := r.client.Patch(ctx, live, patch); err != nil {
		return fmt.Errorf("failed to restore the apex Service in HTTPRoute %s: %w", live.Name, err)
	}
	return nil
}

// get reads the user's HTTPRoute; its absence is an error the user must fix.
func (r *refRouter) get(ctx context.Context, c *sluicev1beta1.Canary) (*gatewayv1.HTTPRoute, error) {
	name := c.Spec.Service.GatewayRouteRef()
	live := &gatewayv1.HTTPRoute{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, live)
	if apierrors.IsNotFound(err) {
		apex, _, _ := c.ServiceNames()
		return nil, fmt.Errorf("spec.service.gatewayAPI.routeRef: HTTPRoute %s not found in namespace %s: create it with a rule whose backendRef is the apex Service %s, or fix the name: %w",
			name, c.Namespace, apex, err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get HTTPRoute %s: %w", name, err)
	}
	return live, nil
}

// write patches the swapped rules and Sluice's label into live, unless
// they are there already.
func (r *refRouter) write(ctx context.Context, c *sluicev1beta1.Canary, live *gatewayv1.HTTPRoute, routes router.Routes) error {
	rules, _, err := SwapBackends(c, live.Spec.Rules, routes)
	if err != nil {
		return err
	}
	if live.Labels[sluicev1beta1.CanaryLabel] == c.Name && equality.Semantic.DeepEqual(rules, live.Spec.Rules) {
		return nil
	}
	patch := client.MergeFromWithOptions(live.DeepCopy(), client.MergeFromWithOptimisticLock{})
	live.Spec.Rules = rules
	labels := maps.Clone(live.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[sluicev1beta1.CanaryLabel] = c.Name
	live.Labels = labels
	if err := r.client.Patch(ctx, live, patch); err != nil {
		return fmt.Errorf("failed to set %s in HTTPRoute %s: %w", routes, live.Name, err)
	}
	return nil
}

// backendKind tells what a backendRef sends to: the apex, primary or
// canary Service of c, or something else ("").
func backendKind(c *sluicev1beta1.Canary, ref gatewayv1.HTTPBackendRef) string {
	if ref.Group != nil && *ref.Group != "" || ref.Kind != nil && *ref.Kind != "Service" {
		return ""
	}
	if ref.Namespace != nil && string(*ref.Namespace) != c.Namespace {
		return ""
	}
	apex, primary, canary := c.ServiceNames()
	switch string(ref.Name) {
	case apex:
		return "apex"
	case primary:
		return "primary"
	case canary:
		return "canary"
	}
	return ""
}

// splitRule tells whether a rule is one Sluice swapped: exactly the
// primary and the canary Services, on one port.
func splitRule(c *sluicev1beta1.Canary, rule gatewayv1.HTTPRouteRule) bool {
	if len(rule.BackendRefs) != 2 {
		return false
	}
	a, b := rule.BackendRefs[0], rule.BackendRefs[1]
	return backendKind(c, a) == "primary" && backendKind(c, b) == "canary" && equality.Semantic.DeepEqual(a.Port, b.Port)
}

// SwapBackends returns the rules of a user's HTTPRoute with the apex
// Service's backendRefs swapped for the primary and the canary at routes
// (at primary 100% the apex Service itself), and how many rules it swapped.
// Every other field is kept as it is. A rule that sends to the apex Service
// and to other backends is an error: its weights are the user's.
func SwapBackends(c *sluicev1beta1.Canary, rules []gatewayv1.HTTPRouteRule, routes router.Routes) ([]gatewayv1.HTTPRouteRule, int, error) {
	apex, primary, canary := c.ServiceNames()
	atRest := routes.CanaryWeight == 0 && routes.PrimaryWeight == 100
	out := make([]gatewayv1.HTTPRouteRule, len(rules))
	swapped := 0
	for i := range rules {
		rule := *rules[i].DeepCopy()
		out[i] = rule
		var base gatewayv1.HTTPBackendRef
		switch {
		case splitRule(c, rule):
			base = *rule.BackendRefs[0].DeepCopy()
		case len(rule.BackendRefs) == 1 && backendKind(c, rule.BackendRefs[0]) == "apex":
			base = *rule.BackendRefs[0].DeepCopy()
		default:
			for _, ref := range rule.BackendRefs {
				if backendKind(c, ref) != "" {
					return nil, 0, fmt.Errorf("rule %d of HTTPRoute %s sends to the %s Service %s together with other backends: Sluice splits only rules whose sole backendRef is the apex Service %s",
						i, c.Spec.Service.GatewayRouteRef(), backendKind(c, ref), ref.Name, apex)
				}
			}
			continue
		}
		swapped++
		named := func(name string, weight *int32) gatewayv1.HTTPBackendRef {
			ref := *base.DeepCopy()
			ref.Name = gatewayv1.ObjectName(name)
			ref.Weight = weight
			return ref
		}
		if atRest {
			// The API server defaults an unset weight to 1; writing it
			// keeps an unchanged rule equal to the live one.
			out[i].BackendRefs = []gatewayv1.HTTPBackendRef{named(apex, ptr(int32(1)))}
			continue
		}
		out[i].BackendRefs = []gatewayv1.HTTPBackendRef{named(primary, ptr(routes.PrimaryWeight)), named(canary, ptr(routes.CanaryWeight))}
	}
	return out, swapped, nil
}

// refRoutesOf reads the weights from the first swapped rule; a route whose
// rules send to the apex Service is at primary 100%. A route with neither
// is an error the user must fix.
func refRoutesOf(c *sluicev1beta1.Canary, route *gatewayv1.HTTPRoute) (router.Routes, error) {
	_, n, err := SwapBackends(c, route.Spec.Rules, router.Routes{PrimaryWeight: 100})
	if err != nil {
		return router.Routes{}, err
	}
	if n == 0 {
		apex, _, _ := c.ServiceNames()
		return router.Routes{}, fmt.Errorf("HTTPRoute %s (spec.service.gatewayAPI.routeRef) has no rule whose backendRef is the apex Service %s: point the backendRefs of the rules to release at Service %s",
			route.Name, apex, apex)
	}
	for _, rule := range route.Spec.Rules {
		if splitRule(c, rule) {
			var out router.Routes
			if w := rule.BackendRefs[0].Weight; w != nil {
				out.PrimaryWeight = *w
			}
			if w := rule.BackendRefs[1].Weight; w != nil {
				out.CanaryWeight = *w
			}
			return out, nil
		}
	}
	return router.Routes{PrimaryWeight: 100}, nil
}
