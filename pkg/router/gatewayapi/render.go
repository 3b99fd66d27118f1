package gatewayapi

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Names of the rules Sluice generates. Every rule whose name starts with
// RulePrefix (or that routes to <apex>-primary or <apex>-canary) is Sluice's;
// the other rules of the HTTPRoute are the users' and are kept.
const (
	RulePrefix = "sluice-"
	// RuleWeighted routes to the primary and the canary by weight
	// (progressive canary, blue/green, mirroring).
	RuleWeighted = RulePrefix + "weighted"
	// RuleAB routes the A/B matches to the primary and the canary by weight.
	RuleAB = RulePrefix + "ab"
	// RuleDefault routes what the A/B matches do not match to the primary.
	RuleDefault = RulePrefix + "default"
	// RuleCanaryCookie routes requests carrying the canary cookie to the canary.
	RuleCanaryCookie = RulePrefix + "canary-cookie"
	// RulePrimaryCookie routes requests carrying the primary cookie to the primary.
	RulePrimaryCookie = RulePrefix + "primary-cookie"
	// RuleExpireCookie expires the canary cookie of the current release once
	// the canary receives no traffic.
	RuleExpireCookie = RulePrefix + "expire-cookie"
	// RuleExpirePreviousCookie expires the canary cookie of the previous release.
	RuleExpirePreviousCookie = RulePrefix + "expire-previous-cookie"
)

// defaultCookieMaxAge is the Max-Age of the canary cookie when
// sessionAffinity.maxAge is unset (Flagger's default, one day).
const defaultCookieMaxAge = 86400

// Rules renders the rules Sluice owns in the HTTPRoute of c for routes.
func Rules(c *sluicev1beta1.Canary, routes router.Routes) ([]gatewayv1.HTTPRouteRule, error) {
	svc := c.Spec.Service
	_, primary, canary := c.ServiceNames()
	serviceMatches, err := translateMatches(svc.Match)
	if err != nil {
		return nil, fmt.Errorf("invalid spec.service.match: %w", err)
	}
	filters, err := commonFilters(c)
	if err != nil {
		return nil, err
	}
	timeouts, err := ruleTimeouts(svc)
	if err != nil {
		return nil, err
	}
	backend := func(name string, weight int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
				Name: gatewayv1.ObjectName(name), Port: ptr(svc.Port),
			},
			Weight: ptr(weight),
		}}
	}
	rule := func(name string, matches []gatewayv1.HTTPRouteMatch, backends ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
		r := gatewayv1.HTTPRouteRule{
			Name:        ptr(gatewayv1.SectionName(name)),
			Matches:     withPaths(matches),
			BackendRefs: backends,
			Timeouts:    timeouts.DeepCopy(),
		}
		for _, f := range filters {
			r.Filters = append(r.Filters, *f.DeepCopy())
		}
		return r
	}
	weighted := func() []gatewayv1.HTTPBackendRef {
		if routes.BaselineWeight > 0 {
			// The baseline's backend exists only while it receives traffic.
			return []gatewayv1.HTTPBackendRef{backend(primary, routes.PrimaryWeight),
				backend(c.BaselineServiceName(), routes.BaselineWeight), backend(canary, routes.CanaryWeight)}
		}
		return []gatewayv1.HTTPBackendRef{backend(primary, routes.PrimaryWeight), backend(canary, routes.CanaryWeight)}
	}

	a := c.Spec.Analysis
	var main gatewayv1.HTTPRouteRule
	var rules, after []gatewayv1.HTTPRouteRule
	if c.Strategy(c.Spec.Provider) == sluicev1beta1.StrategyABTesting {
		analysisMatches, err := translateMatches(a.Match)
		if err != nil {
			return nil, fmt.Errorf("invalid spec.analysis.match: %w", err)
		}
		main = rule(RuleAB, mergeMatches(analysisMatches, serviceMatches), weighted()...)
		after = append(after, rule(RuleDefault, serviceMatches, backend(primary, 100)))
	} else {
		main = rule(RuleWeighted, serviceMatches, weighted()...)
	}
	if routes.Mirrored {
		main.Filters = append(main.Filters, gatewayv1.HTTPRouteFilter{
			Type: gatewayv1.HTTPRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
				BackendRef: gatewayv1.BackendObjectReference{
					Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")),
					Name: gatewayv1.ObjectName(canary), Port: ptr(svc.Port),
				},
				Percent: ptr(c.MirrorWeight()),
			},
		})
	}

	if a != nil && a.SessionAffinity != nil && c.Strategy(c.Spec.Provider) == sluicev1beta1.StrategyCanary {
		sa := a.SessionAffinity
		st := c.Status
		sticky := func(name, cookie string, backends ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
			return rule(name, mergeMatches([]gatewayv1.HTTPRouteMatch{cookieMatch(cookie)}, serviceMatches), backends...)
		}
		expire := func(name, cookie string) (gatewayv1.HTTPRouteRule, error) {
			r := sticky(name, cookie, weighted()...)
			err := addResponseHeader(&r.Filters, "Set-Cookie", cookie+"; Max-Age=-1"+cookieAttributes(sa))
			return r, err
		}
		if routes.CanaryWeight > 0 && st.SessionAffinityCookie != "" {
			rules = append(rules, sticky(RuleCanaryCookie, st.SessionAffinityCookie, backend(primary, 0), backend(canary, 100)))
			maxAge := sa.MaxAge
			if maxAge <= 0 {
				maxAge = defaultCookieMaxAge
			}
			setCookie(&main.BackendRefs[1], fmt.Sprintf("%s; Max-Age=%d%s", st.SessionAffinityCookie, maxAge, cookieAttributes(sa)))
			if sa.PrimaryCookieName != "" && st.PrimarySessionAffinityCookie != "" {
				rules = append(rules, sticky(RulePrimaryCookie, st.PrimarySessionAffinityCookie, backend(primary, 100), backend(canary, 0)))
				setCookie(&main.BackendRefs[0], fmt.Sprintf("%s; Max-Age=%d%s", st.PrimarySessionAffinityCookie,
					int64(c.AnalysisInterval()/time.Second), cookieAttributes(sa)))
			}
		}
		if routes.CanaryWeight == 0 && st.SessionAffinityCookie != "" {
			r, err := expire(RuleExpireCookie, st.SessionAffinityCookie)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		}
		if prev := st.PreviousSessionAffinityCookie; prev != "" && prev != st.SessionAffinityCookie {
			r, err := expire(RuleExpirePreviousCookie, prev)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		}
	}
	rules = append(rules, main)
	return append(rules, after...), nil
}

// setCookie adds a Set-Cookie response header to the responses of one backend.
func setCookie(b *gatewayv1.HTTPBackendRef, value string) {
	b.Filters = append(b.Filters, gatewayv1.HTTPRouteFilter{
		Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}},
		},
	})
}

// addResponseHeader adds a response header to a rule's filters, in its
// ResponseHeaderModifier filter when it has one (the filter cannot repeat).
func addResponseHeader(filters *[]gatewayv1.HTTPRouteFilter, name, value string) error {
	for i := range *filters {
		f := &(*filters)[i]
		if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || f.ResponseHeaderModifier == nil {
			continue
		}
		for _, h := range f.ResponseHeaderModifier.Add {
			if strings.EqualFold(string(h.Name), name) {
				return fmt.Errorf("spec.service.headers.response.add sets %s, which session affinity needs", name)
			}
		}
		f.ResponseHeaderModifier.Add = append(f.ResponseHeaderModifier.Add, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: value})
		return nil
	}
	*filters = append(*filters, gatewayv1.HTTPRouteFilter{
		Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: gatewayv1.HTTPHeaderName(name), Value: value}}},
	})
	return nil
}

// cookieAttributes are the Set-Cookie attributes after Max-Age.
func cookieAttributes(sa *sluicev1beta1.SessionAffinity) string {
	var b strings.Builder
	if sa.Domain != "" {
		b.WriteString("; Domain=" + sa.Domain)
	}
	if sa.Path != "" {
		b.WriteString("; Path=" + sa.Path)
	}
	if sa.HTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if sa.Secure {
		b.WriteString("; Secure")
	}
	if sa.SameSite != "" {
		b.WriteString("; SameSite=" + sa.SameSite)
	}
	if sa.Partitioned {
		b.WriteString("; Partitioned")
	}
	return b.String()
}

// ruleTimeouts are the request and backend request timeouts of every rule.
func ruleTimeouts(svc sluicev1beta1.CanaryService) (*gatewayv1.HTTPRouteTimeouts, error) {
	req, err := duration(svc.Timeout)
	if err != nil {
		return nil, fmt.Errorf("spec.service.timeout: %w", err)
	}
	backend, err := duration(svc.BackendTimeout)
	if err != nil {
		return nil, fmt.Errorf("spec.service.backendTimeout: %w", err)
	}
	if req == nil && backend == nil {
		return nil, nil
	}
	return &gatewayv1.HTTPRouteTimeouts{Request: req, BackendRequest: backend}, nil
}

// commonFilters are the filters of every Sluice rule: header modifiers,
// URL rewrite, CORS and the permanent request mirrors of spec.service.
func commonFilters(c *sluicev1beta1.Canary) ([]gatewayv1.HTTPRouteFilter, error) {
	svc := c.Spec.Service
	var out []gatewayv1.HTTPRouteFilter
	if h := svc.Headers; h != nil {
		if h.Request != nil {
			out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: headerFilter(h.Request)})
		}
		if h.Response != nil {
			out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: headerFilter(h.Response)})
		}
	}
	if rw := svc.Rewrite; rw != nil && (rw.URI != "" || rw.Authority != "") {
		f := &gatewayv1.HTTPURLRewriteFilter{}
		if rw.Authority != "" {
			f.Hostname = ptr(gatewayv1.PreciseHostname(rw.Authority))
		}
		if rw.URI != "" {
			if rw.Type == string(gatewayv1.FullPathHTTPPathModifier) {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr(rw.URI)}
			} else {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr(rw.URI)}
			}
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: f})
	}
	if svc.CorsPolicy != nil {
		cors, err := corsFilter(svc.CorsPolicy)
		if err != nil {
			return nil, err
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterCORS, CORS: cors})
	}
	for _, m := range svc.Mirror {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: m.DeepCopy()})
	}
	return out, nil
}

func headerFilter(op *sluicev1beta1.HeaderOperations) *gatewayv1.HTTPHeaderFilter {
	f := &gatewayv1.HTTPHeaderFilter{}
	for _, k := range sortedKeys(op.Set) {
		f.Set = append(f.Set, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(k), Value: op.Set[k]})
	}
	for _, k := range sortedKeys(op.Add) {
		f.Add = append(f.Add, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(k), Value: op.Add[k]})
	}
	if len(op.Remove) > 0 {
		f.Remove = append([]string(nil), op.Remove...)
		sort.Strings(f.Remove)
	}
	return f
}

// corsFilter translates the CORS policy. The Gateway API takes exact origins
// with an optional leading wildcard label, or *, not regular expressions.
func corsFilter(p *sluicev1beta1.CorsPolicy) (*gatewayv1.HTTPCORSFilter, error) {
	f := &gatewayv1.HTTPCORSFilter{AllowCredentials: p.AllowCredentials}
	for _, o := range p.AllowOrigin {
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o))
	}
	for _, o := range p.AllowOrigins {
		switch {
		case o.Exact != "":
			f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o.Exact))
		case o.Regex == ".*" || o.Regex == "*":
			f.AllowOrigins = append(f.AllowOrigins, "*")
		default:
			return nil, fmt.Errorf("spec.service.corsPolicy.allowOrigins: the gateway api takes exact origins (optionally https://*.example.com) or *, not prefix, suffix or regex")
		}
	}
	for _, m := range p.AllowMethods {
		f.AllowMethods = append(f.AllowMethods, gatewayv1.HTTPMethodWithWildcard(strings.ToUpper(m)))
	}
	for _, h := range p.AllowHeaders {
		f.AllowHeaders = append(f.AllowHeaders, gatewayv1.HTTPHeaderName(h))
	}
	for _, h := range p.ExposeHeaders {
		f.ExposeHeaders = append(f.ExposeHeaders, gatewayv1.HTTPHeaderName(h))
	}
	if p.MaxAge != "" {
		d, err := time.ParseDuration(p.MaxAge)
		if err != nil {
			return nil, fmt.Errorf("spec.service.corsPolicy.maxAge: %w", err)
		}
		// Past int32 seconds (68 years) a cache lifetime means the same.
		secs := int64(d / time.Second)
		if secs > math.MaxInt32 {
			secs = math.MaxInt32
		}
		if secs < 0 {
			secs = 0
		}
		f.MaxAge = int32(secs)
	}
	return f, nil
}
