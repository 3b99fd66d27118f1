// Package kuma is the router of the kuma provider. Flagger drives Kuma
// with a TrafficRoute (kuma.io/v1alpha1), one of the policies Kuma 2.x
// replaced by targetRef policies; Sluice writes their successor, a
// MeshHTTPRoute <apex> in the Canary's namespace (a producer policy: it
// applies to every client of the apex Service in the mesh) whose rule
// splits the requests for the apex MeshService between the <apex>-primary
// and <apex>-canary MeshServices by weight, or, for A/B testing, sends the
// requests matching the analysis' headers to them and the rest to the
// primary. MeshServices are selected by the labels Kuma gives those it
// generates from Kubernetes Services (kuma.io/display-name and
// k8s.kuma.io/namespace), which Kuma 2.9 and later understand. Mirroring
// and session affinity are reported as unsupported.
package kuma

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = "kuma"

// GVK is the kind of the routing object.
var GVK = schema.GroupVersionKind{Group: "kuma.io", Version: "v1alpha1", Kind: "MeshHTTPRoute"}

// Labels Kuma reads on policies and puts on the MeshServices it generates.
const (
	MeshLabel        = "kuma.io/mesh"
	DisplayNameLabel = "kuma.io/display-name"
	NamespaceLabel   = "k8s.kuma.io/namespace"
)

// DefaultMesh is the mesh of the MeshHTTPRoute unless spec.service.apex
// labels it with kuma.io/mesh.
const DefaultMesh = "default"

// RBAC of the kuma router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=kuma.io,resources=meshhttproutes,verbs=get;list;watch;create;update;patch

// Register adds the kuma router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router {
		return &Router{ObjectRouter: router.ObjectRouter{Client: c, Spec: Spec()}}
	}, Name)
	r.RegisterKinds(router.Kind(GVK))
	r.RegisterMetrics(Metrics, Name)
}

// Router drives the MeshHTTPRoute of a Canary.
type Router struct {
	router.ObjectRouter
}

var (
	_ router.WeightedRouter = (*Router)(nil)
	_ router.MatchRouter    = (*Router)(nil)
)

// SupportsWeights marks the router as able to split traffic by weight.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the router as able to route A/B header matches.
func (r *Router) SupportsMatch() {}

// Spec describes the MeshHTTPRoute of a Canary.
func Spec() router.ObjectSpec {
	return router.ObjectSpec{
		GVK:  GVK,
		Name: func(c *sluicev1beta1.Canary) string { apex, _, _ := c.ServiceNames(); return apex },
		Labels: func(*sluicev1beta1.Canary) map[string]string {
			return map[string]string{MeshLabel: DefaultMesh}
		},
		Render: func(_ context.Context, c *sluicev1beta1.Canary, routes router.Routes, _ *unstructured.Unstructured) (map[string]any, error) {
			return Render(c, routes)
		},
		Routes: routesOf,
		Release: func(c *sluicev1beta1.Canary, _ *unstructured.Unstructured) (map[string]any, error) {
			apex, _, _ := c.ServiceNames()
			return route(c, []any{rule(prefixMatch(), backendRef(c, apex, 100))}), nil
		},
	}
}

// Render returns the spec of the MeshHTTPRoute at routes: one weighted rule
// on every path, or for A/B testing one rule per analysis match (headers,
// on every path) with the weights and a rule sending the rest to the
// primary. Kuma prefers the rule with the most specific match, so the
// header rules win over the path-only one.
func Render(c *sluicev1beta1.Canary, routes router.Routes) (map[string]any, error) {
	_, primary, canary := c.ServiceNames()
	weighted := func() []any {
		return []any{backendRef(c, primary, routes.PrimaryWeight), backendRef(c, canary, routes.CanaryWeight)}
	}
	if c.Strategy(c.Spec.Provider) != sluicev1beta1.StrategyABTesting {
		return route(c, []any{rule(prefixMatch(), weighted()...)}), nil
	}
	var matches []any
	for i, m := range c.Spec.Analysis.Match {
		match, err := translate(m)
		if err != nil {
			return nil, fmt.Errorf("spec.analysis.match[%d]: %w", i, err)
		}
		matches = append(matches, match)
	}
	return route(c, []any{rule(matches, weighted()...), rule(prefixMatch(), backendRef(c, primary, 100))}), nil
}

// translate turns an analysis match into a MeshHTTPRoute match: the path
// (every path when unset), the method, the headers and the query
// parameters. What Kuma cannot match on is an error, not a match dropped.
func translate(m sluicev1beta1.HTTPMatchRequest) (map[string]any, error) {
	switch {
	case m.Scheme != nil, m.Authority != nil, m.Port != 0, len(m.SourceLabels) > 0, len(m.Gateways) > 0,
		m.IgnoreURICase, len(m.WithoutHeaders) > 0, m.SourceNamespace != "":
		return nil, fmt.Errorf("the kuma provider matches on uri, method, headers and queryParams only")
	}
	out := map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}
	if u := m.URI; u != nil {
		switch {
		case u.Exact != "":
			out["path"] = map[string]any{"type": "Exact", "value": u.Exact}
		case u.Prefix != "":
			out["path"] = map[string]any{"type": "PathPrefix", "value": u.Prefix}
		case u.Regex != "":
			out["path"] = map[string]any{"type": "RegularExpression", "value": u.Regex}
		default:
			return nil, fmt.Errorf("uri: the kuma provider matches paths by exact, prefix or regex")
		}
	}
	if m.Method != nil {
		if m.Method.Exact == "" {
			return nil, fmt.Errorf("method: the kuma provider matches methods exactly")
		}
		out["method"] = m.Method.Exact
	}
	headers, err := headerMatches(m.Headers)
	if err != nil {
		return nil, err
	}
	if len(headers) > 0 {
		out["headers"] = headers
	}
	if len(m.QueryParams) > 0 {
		names := make([]string, 0, len(m.QueryParams))
		for n := range m.QueryParams {
			names = append(names, n)
		}
		sort.Strings(names)
		var params []any
		for _, n := range names {
			q := m.QueryParams[n]
			switch {
			case q.Exact != "":
				params = append(params, map[string]any{"name": n, "type": "Exact", "value": q.Exact})
			case q.Regex != "":
				params = append(params, map[string]any{"name": n, "type": "RegularExpression", "value": q.Regex})
			default:
				return nil, fmt.Errorf("queryParams %s: the kuma provider matches query parameters by exact or regex", n)
			}
		}
		out["queryParams"] = params
	}
	return out, nil
}

// headerMatches translates the analysis' header matches, sorted by name so
// the rendered spec is stable. Kuma has no suffix match.
func headerMatches(headers map[string]sluicev1beta1.StringMatch) ([]any, error) {
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]any, 0, len(names))
	for _, n := range names {
		m := headers[n]
		h := map[string]any{"name": n}
		switch {
		case m.Exact != "":
			h["type"], h["value"] = "Exact", m.Exact
		case m.Prefix != "":
			h["type"], h["value"] = "Prefix", m.Prefix
		case m.Regex != "":
			h["type"], h["value"] = "RegularExpression", m.Regex
		default:
			return nil, fmt.Errorf("header %s: the kuma provider matches headers by exact, prefix or regex", n)
		}
		out = append(out, h)
	}
	return out, nil
}

func route(c *sluicev1beta1.Canary, rules []any) map[string]any {
	apex, _, _ := c.ServiceNames()
	return map[string]any{
		"targetRef": map[string]any{"kind": "Mesh"},
		"to": []any{map[string]any{
			"targetRef": map[string]any{"kind": "MeshService", "labels": serviceLabels(c, apex)},
			"rules":     rules,
		}},
	}
}

func rule(matches []any, backends ...any) any {
	return map[string]any{"matches": matches, "default": map[string]any{"backendRefs": backends}}
}

func prefixMatch() []any {
	return []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}}
}

func backendRef(c *sluicev1beta1.Canary, name string, weight int32) any {
	return map[string]any{
		"kind":   "MeshService",
		"labels": serviceLabels(c, name),
		"port":   int64(c.Spec.Service.Port),
		"weight": int64(weight),
	}
}

func serviceLabels(c *sluicev1beta1.Canary, name string) map[string]any {
	return map[string]any{DisplayNameLabel: name, NamespaceLabel: c.Namespace}
}

// routesOf reads the weights of the first rule that routes to both the
// primary and the canary (Kuma's default weight is 1).
func routesOf(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	to, _, _ := unstructured.NestedSlice(live.Object, "spec", "to")
	for _, t := range to {
		tm, _ := t.(map[string]any)
		rules, _, _ := unstructured.NestedSlice(tm, "rules")
		for _, r := range rules {
			rm, _ := r.(map[string]any)
			refs, _, _ := unstructured.NestedSlice(rm, "default", "backendRefs")
			var out router.Routes
			var p, k bool
			for _, ref := range refs {
				m, _ := ref.(map[string]any)
				name, _, _ := unstructured.NestedString(m, "labels", DisplayNameLabel)
				w := int32(1)
				if v, ok := router.Weight(m["weight"]); ok {
					w = v
				}
				switch name {
				case primary:
					out.PrimaryWeight, p = w, true
				case canary:
					out.CanaryWeight, k = w, true
				}
			}
			if p && k {
				return out, true
			}
		}
	}
	return router.Routes{}, false
}
