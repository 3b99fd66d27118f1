package gatewayapi

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// defaultPath is the path match of a rule that matches every request; it is
// written explicitly so that the live object equals what Sluice applies.
func defaultPath() *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/")}
}

// translateMatches turns Sluice's (Istio-shaped) request matches into
// HTTPRoute matches. Conditions the Gateway API cannot express are errors.
func translateMatches(in []sluicev1beta1.HTTPMatchRequest) ([]gatewayv1.HTTPRouteMatch, error) {
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(in))
	for i, m := range in {
		gm, err := translateMatch(m)
		if err != nil {
			return nil, fmt.Errorf("match %d: %w", i, err)
		}
		out = append(out, gm)
	}
	return out, nil
}

func translateMatch(m sluicev1beta1.HTTPMatchRequest) (gatewayv1.HTTPRouteMatch, error) {
	var out gatewayv1.HTTPRouteMatch
	switch {
	case m.IgnoreURICase:
		return out, fmt.Errorf("the gateway api cannot match a uri ignoring case (ignoreUriCase)")
	case len(m.WithoutHeaders) > 0:
		return out, fmt.Errorf("the gateway api cannot match the absence of headers (withoutHeaders)")
	case m.Scheme != nil, m.Authority != nil, m.Port != 0:
		return out, fmt.Errorf("the gateway api cannot match scheme, authority or port in a route rule: use hostnames (spec.service.hosts) or the gateway listener")
	case len(m.SourceLabels) > 0, m.SourceNamespace != "", len(m.Gateways) > 0:
		return out, fmt.Errorf("the gateway api cannot match sourceLabels, sourceNamespace or gateways: use spec.service.gatewayRefs")
	}
	if m.URI != nil {
		p, err := pathMatch(*m.URI)
		if err != nil {
			return out, err
		}
		out.Path = p
	}
	if m.Method != nil {
		if m.Method.Exact == "" || m.Method.Prefix != "" || m.Method.Regex != "" || m.Method.Suffix != "" {
			return out, fmt.Errorf("the gateway api matches a method exactly only")
		}
		out.Method = ptr(gatewayv1.HTTPMethod(strings.ToUpper(m.Method.Exact)))
	}
	for _, name := range sortedKeys(m.Headers) {
		t, v := valueMatch(m.Headers[name])
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{Name: gatewayv1.HTTPHeaderName(name), Type: ptr(gatewayv1.HeaderMatchType(t)), Value: v})
	}
	for _, name := range sortedKeys(m.QueryParams) {
		t, v := valueMatch(m.QueryParams[name])
		out.QueryParams = append(out.QueryParams, gatewayv1.HTTPQueryParamMatch{Name: gatewayv1.HTTPHeaderName(name), Type: ptr(gatewayv1.QueryParamMatchType(t)), Value: v})
	}
	return out, nil
}

func pathMatch(s sluicev1beta1.StringMatch) (*gatewayv1.HTTPPathMatch, error) {
	switch {
	case s.Exact != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchExact), Value: ptr(s.Exact)}, nil
	case s.Prefix != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr(s.Prefix)}, nil
	case s.Regex != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchRegularExpression), Value: ptr(s.Regex)}, nil
	case s.Suffix != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchRegularExpression), Value: ptr(".*" + regexp.QuoteMeta(s.Suffix) + "$")}, nil
	default:
		return defaultPath(), nil
	}
}

// valueMatch translates a header or query parameter match: exact stays
// exact, everything else becomes a regular expression (an empty match
// matches any value).
func valueMatch(s sluicev1beta1.StringMatch) (typ, value string) {
	switch {
	case s.Exact != "":
		return "Exact", s.Exact
	case s.Regex != "":
		return "RegularExpression", s.Regex
	case s.Prefix != "":
		return "RegularExpression", "^" + regexp.QuoteMeta(s.Prefix) + ".*"
	case s.Suffix != "":
		return "RegularExpression", ".*" + regexp.QuoteMeta(s.Suffix) + "$"
	default:
		return "RegularExpression", ".*"
	}
}

// mergeMatches combines the A/B conditions with the service's: every
// analysis match is ANDed with every service match. Headers and query
// parameters are united (the analysis wins on the same name); the path and
// method come from the analysis match when it sets them.
func mergeMatches(analysis, service []gatewayv1.HTTPRouteMatch) []gatewayv1.HTTPRouteMatch {
	if len(analysis) == 0 {
		return service
	}
	if len(service) == 0 {
		return analysis
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(analysis)*len(service))
	for _, a := range analysis {
		for _, s := range service {
			m := *s.DeepCopy()
			if a.Path != nil {
				m.Path = a.Path.DeepCopy()
			}
			if a.Method != nil {
				m.Method = ptr(*a.Method)
			}
			m.Headers = mergeHeaders(m.Headers, a.Headers)
			m.QueryParams = mergeQueryParams(m.QueryParams, a.QueryParams)
			out = append(out, m)
		}
	}
	return out
}

func mergeHeaders(base, over []gatewayv1.HTTPHeaderMatch) []gatewayv1.HTTPHeaderMatch {
	byName := map[string]gatewayv1.HTTPHeaderMatch{}
	for _, h := range append(append([]gatewayv1.HTTPHeaderMatch{}, base...), over...) {
		byName[strings.ToLower(string(h.Name))] = h
	}
	var out []gatewayv1.HTTPHeaderMatch
	for _, k := range sortedKeys(byName) {
		out = append(out, byName[k])
	}
	return out
}

func mergeQueryParams(base, over []gatewayv1.HTTPQueryParamMatch) []gatewayv1.HTTPQueryParamMatch {
	byName := map[string]gatewayv1.HTTPQueryParamMatch{}
	for _, q := range append(append([]gatewayv1.HTTPQueryParamMatch{}, base...), over...) {
		byName[string(q.Name)] = q
	}
	var out []gatewayv1.HTTPQueryParamMatch
	for _, k := range sortedKeys(byName) {
		out = append(out, byName[k])
	}
	return out
}

// withPaths gives every match an explicit path (PathPrefix / when it has
// none), which is what the API server defaults and what the URLRewrite
// ReplacePrefixMatch validation requires.
func withPaths(ms []gatewayv1.HTTPRouteMatch) []gatewayv1.HTTPRouteMatch {
	if len(ms) == 0 {
		return []gatewayv1.HTTPRouteMatch{{Path: defaultPath()}}
	}
	out := make([]gatewayv1.HTTPRouteMatch, len(ms))
	for i, m := range ms {
		out[i] = *m.DeepCopy()
		if out[i].Path == nil {
			out[i].Path = defaultPath()
		}
	}
	return out
}

// cookieMatch matches requests whose Cookie header carries cookie
// ("<name>=<value>") as one of its pairs. Flagger uses .*name.*value.*; this
// expression also holds for implementations that match the whole header
// value (Envoy) and for those that search it (Traefik), and does not take
// "other-name=value" or "name=value2" for the cookie.
func cookieMatch(cookie string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{
		Name:  "Cookie",
		Type:  ptr(gatewayv1.HeaderMatchRegularExpression),
		Value: `(^|.*;\s*)` + regexp.QuoteMeta(cookie) + `(\s*;.*|$)`,
	}}}
}

// duration converts a Go duration string (spec.service.timeout) into the
// Gateway API duration format (GEP-2257: up to four of h, m, s, ms).
func duration(s string) (*gatewayv1.Duration, error) {
	if s == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	if d < 0 || d%time.Millisecond != 0 {
		return nil, fmt.Errorf("invalid duration %q: the gateway api takes whole milliseconds", s)
	}
	if d == 0 {
		return ptr(gatewayv1.Duration("0s")), nil
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			if n > 99999 {
				return nil, fmt.Errorf("invalid duration %q: too long for the gateway api", s)
			}
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return ptr(gatewayv1.Duration(b.String())), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }
