package istio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	istionet "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// RulePrefix starts the name of every HTTP rule Sluice generates; rules
// with other names belong to users and are kept after Sluice's.
const RulePrefix = "sluice-"

// Port is a port of the apex Service to route.
type Port struct {
	Name   string
	Number int32
}

func objectMeta(c *sluicev1beta1.Canary, name string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: c.Namespace}
	if a := c.Spec.Service.Apex; a != nil {
		if len(a.Labels) > 0 {
			m.Labels = a.Labels
		}
		if len(a.Annotations) > 0 {
			m.Annotations = a.Annotations
		}
	}
	return m
}

// DestinationRules renders the primary and canary DestinationRules.
func DestinationRules(c *sluicev1beta1.Canary) (primary, canary *networkingv1.DestinationRule, err error) {
	_, p, cn := c.ServiceNames()
	if primary, err = destinationRule(c, p); err != nil {
		return nil, nil, err
	}
	if canary, err = destinationRule(c, cn); err != nil {
		return nil, nil, err
	}
	return primary, canary, nil
}

// BaselineDestinationRule renders the DestinationRule of <apex>-baseline,
// with the same traffic policy as the primary's and the canary's: a
// baseline exists to be compared with the canary, and a baseline reached
// with other TLS, load-balancing or outlier settings would measure those
// settings as well as the version.
func BaselineDestinationRule(c *sluicev1beta1.Canary) (*networkingv1.DestinationRule, error) {
	return destinationRule(c, c.BaselineServiceName())
}

func destinationRule(c *sluicev1beta1.Canary, host string) (*networkingv1.DestinationRule, error) {
	dr := &networkingv1.DestinationRule{ObjectMeta: objectMeta(c, host)}
	dr.APIVersion, dr.Kind = "networking.istio.io/v1", "DestinationRule"
	dr.Spec.Host = host
	tp, err := trafficPolicy(c.Spec.Service.TrafficPolicy)
	if err != nil {
		return nil, fmt.Errorf("spec.service.trafficPolicy: %w", err)
	}
	dr.Spec.TrafficPolicy = tp
	return dr, nil
}

// VirtualService renders the VirtualService of a Canary for the given
// routes. ports are the ports of the apex Service; with more than one, every
// port gets its own rules (matched on the port, routed to the same port).
// The rules users added to the live object are appended by the caller.
func VirtualService(c *sluicev1beta1.Canary, routes router.Routes, ports []Port) (*networkingv1.VirtualService, error) {
	apex, _, _ := c.ServiceNames()
	s := c.Spec.Service
	vs := &networkingv1.VirtualService{ObjectMeta: objectMeta(c, apex)}
	vs.APIVersion, vs.Kind = "networking.istio.io/v1", "VirtualService"
	if !s.Delegation {
		hosts := slices.Clone(s.Hosts)
		if !slices.Contains(hosts, "*") && !slices.Contains(hosts, apex) {
			hosts = append(hosts, apex)
		}
		vs.Spec.Hosts = hosts
		vs.Spec.Gateways = slices.Clone(s.Gateways)
		if len(vs.Spec.Gateways) == 0 {
			vs.Spec.Gateways = []string{"mesh"}
		}
	}
	if len(ports) == 0 {
		ports = []Port{{Name: c.PortName(), Number: s.Port}}
	}
	multi := len(ports) > 1
	for _, p := range ports {
		if strings.EqualFold(s.AppProtocol, "tcp") {
			vs.Spec.Tcp = append(vs.Spec.Tcp, tcpRoute(c, routes, p, multi))
			continue
		}
		rules, err := httpRoutes(c, routes, p, multi)
		if err != nil {
			return nil, err
		}
		vs.Spec.Http = append(vs.Spec.Http, rules...)
	}
	return vs, nil
}

func destination(host string, p Port) *istionet.Destination {
	return &istionet.Destination{Host: host, Port: &istionet.PortSelector{Number: uint32(p.Number)}} //nolint:gosec // a port
}

func tcpRoute(c *sluicev1beta1.Canary, routes router.Routes, p Port, multi bool) *istionet.TCPRoute {
	_, primary, canary := c.ServiceNames()
	r := &istionet.TCPRoute{Route: []*istionet.RouteDestination{
		{Destination: destination(primary, p), Weight: routes.PrimaryWeight},
		{Destination: destination(canary, p), Weight: routes.CanaryWeight},
	}}
	if routes.BaselineWeight > 0 {
		r.Route = append(r.Route, &istionet.RouteDestination{Destination: destination(c.BaselineServiceName(), p), Weight: routes.BaselineWeight})
	}
	if multi {
		r.Match = []*istionet.L4MatchAttributes{{Port: uint32(p.Number)}} //nolint:gosec // a port
	}
	return r
}

// ruleName names a generated rule: sluice-<kind>[-<port>].
func ruleName(kind string, p Port, multi bool) string {
	n := RulePrefix + kind
	if multi {
		if p.Name != "" {
			n += "-" + p.Name
		} else {
			n += "-" + strconv.Itoa(int(p.Number))
		}
	}
	return n
}

// matches translates match alternatives, restricted to a port when the
// apex Service has several.
func matches(ms []sluicev1beta1.HTTPMatchRequest, p Port, multi bool) []*istionet.HTTPMatchRequest {
	if multi {
		ms = mergeMatches(ms, []sluicev1beta1.HTTPMatchRequest{{Port: p.Number}})
	}
	var out []*istionet.HTTPMatchRequest
	for _, m := range ms {
		out = append(out, httpMatch(m))
	}
	return out
}

// baseRule is a rule with the route options of spec.service and no destinations.
func baseRule(c *sluicev1beta1.Canary, name string) (*istionet.HTTPRoute, error) {
	s := c.Spec.Service
	r := &istionet.HTTPRoute{Name: name, Rewrite: rewrite(s.Rewrite), Headers: headers(s.Headers)}
	var err error
	if r.Timeout, err = duration("spec.service.timeout", s.Timeout); err != nil {
		return nil, err
	}
	if r.Retries, err = retries(s.Retries); err != nil {
		return nil, fmt.Errorf("spec.service: %w", err)
	}
	if r.CorsPolicy, err = corsPolicy(s.CorsPolicy); err != nil {
		return nil, fmt.Errorf("spec.service: %w", err)
	}
	return r, nil
}

// cookie formats a Set-Cookie value with the attributes of the spec.
func cookie(sa *sluicev1beta1.SessionAffinity, value string, maxAge int64) string {
	parts := []string{value, "Max-Age=" + strconv.FormatInt(maxAge, 10)}
	if sa.Domain != "" {
		parts = append(parts, "Domain="+sa.Domain)
	}
	if sa.Path != "" {
		parts = append(parts, "Path="+sa.Path)
	}
	if sa.HTTPOnly {
		parts = append(parts, "HttpOnly")
	}
	if sa.Secure {
		parts = append(parts, "Secure")
	}
	if sa.SameSite != "" {
		parts = append(parts, "SameSite="+sa.SameSite)
	}
	if sa.Partitioned {
		parts = append(parts, "Partitioned")
	}
	return strings.Join(parts, "; ")
}

// cookieMatch matches requests carrying a cookie ("<name>=<value>").
func cookieMatch(value string) sluicev1beta1.HTTPMatchRequest {
	return sluicev1beta1.HTTPMatchRequest{Headers: map[string]sluicev1beta1.StringMatch{
		"cookie": {Regex: ".*" + regexp.QuoteMeta(value) + ".*"}}}
}

func setCookie(value string) *istionet.Headers {
	return &istionet.Headers{Response: &istionet.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
}

// httpRoutes renders the HTTP rules of one port: A/B testing rules, sticky
// session rules, or the weighted rule (with mirroring).
func httpRoutes(c *sluicev1beta1.Canary, routes router.Routes, p Port, multi bool) ([]*istionet.HTTPRoute, error) {
	_, primary, canary := c.ServiceNames()
	s := c.Spec.Service
	a := c.Spec.Analysis
	weighted := func(name string, ms []sluicev1beta1.HTTPMatchRequest, pw, cw int32) (*istionet.HTTPRoute, error) {
		r, err := baseRule(c, ruleName(name, p, multi))
		if err != nil {
			return nil, err
		}
		r.Match = matches(ms, p, multi)
		r.Route = []*istionet.HTTPRouteDestination{
			{Destination: destination(primary, p), Weight: pw},
			{Destination: destination(canary, p), Weight: cw},
		}
		if routes.BaselineWeight > 0 {
			// The baseline's destination exists only while it receives traffic.
			r.Route = append(r.Route, &istionet.HTTPRouteDestination{Destination: destination(c.BaselineServiceName(), p), Weight: routes.BaselineWeight})
		}
		return r, nil
	}
	only := func(name string, ms []sluicev1beta1.HTTPMatchRequest, host string) (*istionet.HTTPRoute, error) {
		r, err := baseRule(c, ruleName(name, p, multi))
		if err != nil {
			return nil, err
		}
		r.Match = matches(ms, p, multi)
		r.Route = []*istionet.HTTPRouteDestination{{Destination: destination(host, p), Weight: 100}}
		return r, nil
	}

	if c.Strategy(sluicev1beta1.ProviderIstio) == sluicev1beta1.StrategyABTesting {
		ab, err := weighted("ab", mergeMatches(s.Match, a.Match), routes.PrimaryWeight, routes.CanaryWeight)
		if err != nil {
			return nil, err
		}
		def, err := only("primary", s.Match, primary)
		if err != nil {
			return nil, err
		}
		return []*istionet.HTTPRoute{ab, def}, nil
	}

	main, err := weighted("canary", s.Match, routes.PrimaryWeight, routes.CanaryWeight)
	if err != nil {
		return nil, err
	}
	if routes.Mirrored {
		main.Mirror = destination(canary, p)
		main.MirrorPercentage = &istionet.Percent{Value: float64(c.MirrorWeight())}
	}
	var out []*istionet.HTTPRoute
	if sa := sessionAffinity(c); sa != nil {
		st := c.Status
		if routes.CanaryWeight > 0 && routes.CanaryWeight < 100 && st.SessionAffinityCookie != "" {
			sticky, err := only("sticky-canary", mergeMatches(s.Match, []sluicev1beta1.HTTPMatchRequest{cookieMatch(st.SessionAffinityCookie)}), canary)
			if err != nil {
				return nil, err
			}
			out = append(out, sticky)
			main.Route[1].Headers = setCookie(cookie(sa, st.SessionAffinityCookie, int64(sa.MaxAge)))
			if sa.PrimaryCookieName != "" && st.PrimarySessionAffinityCookie != "" {
				stickyPrimary, err := only("sticky-primary", mergeMatches(s.Match, []sluicev1beta1.HTTPMatchRequest{cookieMatch(st.PrimarySessionAffinityCookie)}), primary)
				if err != nil {
					return nil, err
				}
				out = append(out, stickyPrimary)
				main.Route[0].Headers = setCookie(cookie(sa, st.PrimarySessionAffinityCookie, int64(c.AnalysisInterval().Seconds())))
			}
		}
		if prev := st.PreviousSessionAffinityCookie; prev != "" && prev != st.SessionAffinityCookie {
			// Expire the previous release's cookie on every response of the rule.
			if main.Headers == nil {
				main.Headers = &istionet.Headers{}
			}
			if main.Headers.Response == nil {
				main.Headers.Response = &istionet.Headers_HeaderOperations{}
			}
			if main.Headers.Response.Add == nil {
				main.Headers.Response.Add = map[string]string{}
			}
			main.Headers.Response.Add["Set-Cookie"] = cookie(sa, prev, -1)
		}
	}
	return append(out, main), nil
}

// Released renders the VirtualService Sluice leaves behind when its Canary
// is deleted: Sluice's rules at primary 100%, without mirroring or sticky
// sessions, each routing to the apex Service on the same port (weight 100).
// A/B matches stay and route to the apex too.
func Released(c *sluicev1beta1.Canary, ports []Port) (*networkingv1.VirtualService, error) {
	apex, _, _ := c.ServiceNames()
	rc := c.DeepCopy()
	rc.Status.SessionAffinityCookie, rc.Status.PrimarySessionAffinityCookie, rc.Status.PreviousSessionAffinityCookie = "", "", ""
	vs, err := VirtualService(rc, router.Routes{PrimaryWeight: 100}, ports)
	if err != nil {
		return nil, err
	}
	toApex := func(d *istionet.Destination) *istionet.Destination {
		out := &istionet.Destination{Host: apex}
		if d != nil && d.Port != nil {
			out.Port = &istionet.PortSelector{Number: d.Port.Number}
		}
		return out
	}
	for _, h := range vs.Spec.Http {
		var first *istionet.Destination
		if len(h.Route) > 0 {
			first = h.Route[0].Destination
		}
		h.Route = []*istionet.HTTPRouteDestination{{Destination: toApex(first), Weight: 100}}
		h.Mirror, h.MirrorPercentage = nil, nil
	}
	for _, t := range vs.Spec.Tcp {
		var first *istionet.Destination
		if len(t.Route) > 0 {
			first = t.Route[0].Destination
		}
		t.Route = []*istionet.RouteDestination{{Destination: toApex(first), Weight: 100}}
	}
	return vs, nil
}

// sessionAffinity returns the session affinity settings of a progressive
// canary (with a default max age), or nil.
func sessionAffinity(c *sluicev1beta1.Canary) *sluicev1beta1.SessionAffinity {
	a := c.Spec.Analysis
	if a == nil || a.SessionAffinity == nil || c.Strategy(sluicev1beta1.ProviderIstio) != sluicev1beta1.StrategyCanary {
		return nil
	}
	sa := a.SessionAffinity.DeepCopy()
	if sa.MaxAge <= 0 {
		sa.MaxAge = 86400
	}
	return sa
}

// SpecHashAnnotation holds the hash of the spec fields Sluice last applied.
const SpecHashAnnotation = "sluice.dev/spec-hash"

// newObject builds the unstructured object Sluice applies: name, namespace,
// the metadata of spec.service.apex, the spec and its hash.
func newObject(gvk schema.GroupVersionKind, meta metav1.ObjectMeta, spec map[string]any) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	obj.SetGroupVersionKind(gvk)
	obj.SetName(meta.Name)
	obj.SetNamespace(meta.Namespace)
	obj.SetLabels(maps.Clone(meta.Labels))
	annotations := maps.Clone(meta.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[SpecHashAnnotation] = specHash(spec)
	obj.SetAnnotations(annotations)
	return obj
}

// specHash is a short hash of a spec's JSON form (map keys are sorted).
func specHash(spec map[string]any) string {
	data, _ := json.Marshal(spec)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// Render returns the objects the router writes for a new Canary at the
// given routes, without an API server: the VirtualService, then the primary
// and canary DestinationRules. ports are the apex Service's (nil: spec.service.port).
func Render(c *sluicev1beta1.Canary, routes router.Routes, ports []Port) ([]*unstructured.Unstructured, error) {
	vs, err := VirtualService(c, routes, ports)
	if err != nil {
		return nil, err
	}
	primary, canary, err := DestinationRules(c)
	if err != nil {
		return nil, err
	}
	vsSpec, err := toMap(&vs.Spec)
	if err != nil {
		return nil, err
	}
	out := []*unstructured.Unstructured{newObject(VirtualServiceGVK, vs.ObjectMeta, vsSpec)}
	for _, dr := range []*networkingv1.DestinationRule{primary, canary} {
		spec, err := toMap(&dr.Spec)
		if err != nil {
			return nil, err
		}
		out = append(out, newObject(DestinationRuleGVK, dr.ObjectMeta, spec))
	}
	for _, o := range out {
		o.SetOwnerReferences([]metav1.OwnerReference{router.OwnerReference(c)})
	}
	return out, nil
}
