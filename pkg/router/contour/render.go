package contour

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Render returns the HTTPProxy Sluice applies at the given weights: only the
// fields Sluice owns (metadata from spec.service.apex, the Canary label and
// spec.routes: Sluice's routes first, then the routes of live that send
// elsewhere). live's spec is recorded in router.OriginalAnnotation when
// Sluice did not create it.
func Render(c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	u := newProxy(c)
	original, err := router.OriginalOf(live, string(c.UID))
	if err != nil {
		return nil, fmt.Errorf("failed to record the original spec of HTTPProxy %s: %w", apex, err)
	}
	if original != "" {
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[router.OriginalAnnotation] = original
		u.SetAnnotations(ann)
	}
	if live == nil || router.ControlledBy(live, c.UID) {
		u.SetOwnerReferences([]metav1.OwnerReference{router.OwnerReference(c)})
	}
	conds, err := headerConditions(matchOf(c))
	if err != nil {
		return nil, err
	}
	prefix := prefixOf(c)
	services := func(p, k int64) []any {
		return []any{service(c, primary, p), service(c, canary, k)}
	}
	var sluiceRoutes []any
	if len(conds) > 0 {
		// A/B testing: matching requests follow the weights, the others stay on the primary.
		ab := route(c, append([]any{map[string]any{"prefix": prefix}}, conds...), services(int64(routes.PrimaryWeight), int64(routes.CanaryWeight)))
		sluiceRoutes = []any{ab, route(c, []any{map[string]any{"prefix": prefix}}, services(100, 0))}
	} else {
		sluiceRoutes = []any{route(c, []any{map[string]any{"prefix": prefix}}, services(int64(routes.PrimaryWeight), int64(routes.CanaryWeight)))}
	}
	all := append(sluiceRoutes, usersRoutes(live, primary, canary, apex)...)
	if err := unstructured.SetNestedSlice(u.Object, all, "spec", "routes"); err != nil {
		return nil, fmt.Errorf("failed to render HTTPProxy %s: %w", apex, err)
	}
	return u, nil
}

// Released renders the HTTPProxy Sluice leaves behind when its Canary is
// deleted: Sluice's routes (keeping their conditions and policies) send to
// the apex Service only, the users' routes are kept, no owner reference.
func Released(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	u := newProxy(c)
	var out []any
	liveRoutes, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	for _, item := range liveRoutes {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		m = runtime.DeepCopyJSONValue(m).(map[string]any)
		if ours(m, primary, canary, apex) {
			m["services"] = []any{service(c, apex, 100)}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		out = []any{route(c, []any{map[string]any{"prefix": prefixOf(c)}}, []any{service(c, apex, 100)})}
	}
	if err := unstructured.SetNestedSlice(u.Object, out, "spec", "routes"); err != nil {
		return nil, fmt.Errorf("failed to render HTTPProxy %s: %w", apex, err)
	}
	return u, nil
}

func newProxy(c *sluicev1beta1.Canary) *unstructured.Unstructured {
	apex, _, _ := c.ServiceNames()
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(GVK)
	u.SetName(apex)
	u.SetNamespace(c.Namespace)
	if m := c.Spec.Service.Apex; m != nil {
		if len(m.Labels) > 0 {
			u.SetLabels(maps.Clone(m.Labels))
		}
		ann := maps.Clone(m.Annotations)
		delete(ann, router.OriginalAnnotation)
		if len(ann) > 0 {
			u.SetAnnotations(ann)
		}
	}
	router.SetCanaryLabel(u, c)
	return u
}

func matchOf(c *sluicev1beta1.Canary) []sluicev1beta1.HTTPMatchRequest {
	if a := c.Spec.Analysis; a != nil {
		return a.Match
	}
	return nil
}

// prefixOf is the path prefix of the routes: the first service match's URI
// prefix, else / (as Flagger).
func prefixOf(c *sluicev1beta1.Canary) string {
	if m := c.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && m[0].URI.Prefix != "" {
		return m[0].URI.Prefix
	}
	return "/"
}

// headerConditions translates the analysis matches into HTTPProxy header
// conditions (ANDed): exact, regex, and contains for a prefix or suffix
// (Flagger's approximation: Contour has no prefix match for headers).
func headerConditions(ms []sluicev1beta1.HTTPMatchRequest) ([]any, error) {
	var out []any
	for i, m := range ms {
		if m.URI != nil || m.Method != nil || m.Scheme != nil || m.Authority != nil || len(m.QueryParams) > 0 || len(m.SourceLabels) > 0 || m.Port != 0 || len(m.Gateways) > 0 {
			return nil, fmt.Errorf("provider contour matches headers only: remove analysis.match[%d] fields other than headers", i)
		}
		names := make([]string, 0, len(m.Headers))
		for k := range m.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := m.Headers[k]
			h := map[string]any{"name": k}
			switch {
			case v.Exact != "":
				h["exact"] = v.Exact
			case v.Regex != "":
				h["regex"] = v.Regex
			case v.Prefix != "":
				h["contains"] = v.Prefix
			case v.Suffix != "":
				h["contains"] = v.Suffix
			default:
				h["present"] = true
			}
			out = append(out, map[string]any{"header": h})
		}
	}
	return out, nil
}

func route(c *sluicev1beta1.Canary, conditions, services []any) map[string]any {
	r := map[string]any{"conditions": conditions, "services": services}
	if t := c.Spec.Service.Timeout; t != "" {
		r["timeoutPolicy"] = map[string]any{"response": t, "idle": "5m"}
	}
	if rt := c.Spec.Service.Retries; rt != nil {
		p := map[string]any{"count": int64(rt.Attempts)}
		if rt.PerTryTimeout != "" {
			p["perTryTimeout"] = rt.PerTryTimeout
		}
		if rt.RetryOn != "" {
			var on []any
			for _, s := range strings.Split(rt.RetryOn, ",") {
				on = append(on, strings.TrimSpace(s))
			}
			p["retryOn"] = on
		}
		r["retryPolicy"] = p
	}
	return r
}

// service is a weighted service entry; the l5d-dst-override header lets
// Linkerd route the request to that Service, as Flagger sets it.
func service(c *sluicev1beta1.Canary, name string, weight int64) map[string]any {
	port := int64(c.Spec.Service.Port)
	return map[string]any{
		"name":   name,
		"port":   port,
		"weight": weight,
		"requestHeadersPolicy": map[string]any{"set": []any{map[string]any{
			"name": "l5d-dst-override", "value": fmt.Sprintf("%s.%s.svc.cluster.local:%d", name, c.Namespace, port)}}},
	}
}

// ours tells whether a route is Sluice's: it sends to the primary or the
// canary (or, once released, to the apex only).
func ours(route map[string]any, primary, canary, apex string) bool {
	names := serviceNames(route)
	return slices.Contains(names, primary) || slices.Contains(names, canary) || (len(names) == 1 && names[0] == apex)
}

func serviceNames(route map[string]any) []string {
	services, _, _ := unstructured.NestedSlice(route, "services")
	var out []string
	for _, s := range services {
		if m, ok := s.(map[string]any); ok {
			n, _ := m["name"].(string)
			out = append(out, n)
		}
	}
	return out
}

// usersRoutes are the live routes that are not Sluice's, kept after Sluice's.
func usersRoutes(live *unstructured.Unstructured, primary, canary, apex string) []any {
	if live == nil {
		return nil
	}
	routes, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	var out []any
	for _, item := range routes {
		if m, ok := item.(map[string]any); ok && !ours(m, primary, canary, apex) {
			out = append(out, runtime.DeepCopyJSONValue(m))
		}
	}
	return out
}

// readWeights reads the primary and canary weights of Sluice's first route
// as percentages; ok is false when there is none.
func readWeights(live *unstructured.Unstructured, c *sluicev1beta1.Canary) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	routes, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	for _, item := range routes {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		var p, k int64
		var hasP, hasK bool
		services, _, _ := unstructured.NestedSlice(m, "services")
		for _, s := range services {
			sm, _ := s.(map[string]any)
			w, _ := toInt64(sm["weight"])
			switch sm["name"] {
			case primary:
				p, hasP = w, true
			case canary:
				k, hasK = w, true
			}
		}
		if !hasP || !hasK {
			continue
		}
		if p < 0 || k < 0 || p+k <= 0 {
			return router.Routes{}, false
		}
		cw := int32(math.Round(float64(k) * 100 / float64(p+k)))
		return router.Routes{PrimaryWeight: 100 - cw, CanaryWeight: cw}, true
	}
	return router.Routes{}, false
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// upToDate tells whether live holds desired's metadata and routes.
func upToDate(live, desired *unstructured.Unstructured) bool {
	for k, v := range desired.GetLabels() {
		if live.GetLabels()[k] != v {
			return false
		}
	}
	for k, v := range desired.GetAnnotations() {
		if live.GetAnnotations()[k] != v {
			return false
		}
	}
	for _, want := range desired.GetOwnerReferences() {
		if !slices.ContainsFunc(live.GetOwnerReferences(), func(got metav1.OwnerReference) bool { return reflect.DeepEqual(want, got) }) {
			return false
		}
	}
	want, _, _ := unstructured.NestedSlice(desired.Object, "spec", "routes")
	got, _, _ := unstructured.NestedSlice(live.Object, "spec", "routes")
	return reflect.DeepEqual(normalize(want), normalize(got))
}

func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
