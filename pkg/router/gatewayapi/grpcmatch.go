package gatewayapi

import (
	"fmt"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// translateGRPCMatches turns Sluice's (Istio-shaped) request matches into
// GRPCRoute matches. A gRPC call is a POST to /<service>/<method>, which is
// how Istio and Flagger users match it (uri), so the uri becomes the method
// match: exact /<service>/<method> matches one method, prefix /<service>/
// (or /<service>) every method of a service, and a regex matches services
// and methods by expression when it has the form /<service regex>/<method
// regex>. Headers are gRPC metadata. Conditions a GRPCRoute cannot express
// are errors.
func translateGRPCMatches(in []sluicev1beta1.HTTPMatchRequest) ([]gatewayv1.GRPCRouteMatch, error) {
	out := make([]gatewayv1.GRPCRouteMatch, 0, len(in))
	everything := false
	for i, m := range in {
		gm, err := translateGRPCMatch(m)
		if err != nil {
			return nil, fmt.Errorf("match %d: %w", i, err)
		}
		if gm.Method == nil && len(gm.Headers) == 0 {
			// A match of every call makes the whole list match every
			// call: no matches at all says it without an empty entry.
			everything = true
		}
		out = append(out, gm)
	}
	if everything {
		return nil, nil
	}
	return out, nil
}

func translateGRPCMatch(m sluicev1beta1.HTTPMatchRequest) (gatewayv1.GRPCRouteMatch, error) {
	var out gatewayv1.GRPCRouteMatch
	switch {
	case m.Method != nil:
		return out, fmt.Errorf("a GRPCRoute cannot match the HTTP method (every gRPC call is a POST): match the gRPC method with uri /<service>/<method>")
	case len(m.QueryParams) > 0:
		return out, fmt.Errorf("a GRPCRoute cannot match query parameters")
	case m.IgnoreURICase:
		return out, fmt.Errorf("a GRPCRoute cannot match a service or method ignoring case (ignoreUriCase)")
	case len(m.WithoutHeaders) > 0:
		return out, fmt.Errorf("a GRPCRoute cannot match the absence of headers (withoutHeaders)")
	case m.Scheme != nil, m.Authority != nil, m.Port != 0:
		return out, fmt.Errorf("a GRPCRoute cannot match scheme, authority or port in a route rule: use hostnames (spec.service.hosts) or the gateway listener")
	case len(m.SourceLabels) > 0, m.SourceNamespace != "", len(m.Gateways) > 0:
		return out, fmt.Errorf("a GRPCRoute cannot match sourceLabels, sourceNamespace or gateways: use spec.service.gatewayRefs")
	}
	if m.URI != nil {
		mm, err := grpcMethodMatch(*m.URI)
		if err != nil {
			return out, err
		}
		out.Method = mm
	}
	for _, name := range sortedKeys(m.Headers) {
		t, v := valueMatch(m.Headers[name])
		out.Headers = append(out.Headers, gatewayv1.GRPCHeaderMatch{Name: gatewayv1.GRPCHeaderName(name), Type: ptr(gatewayv1.GRPCHeaderMatchType(t)), Value: v})
	}
	return out, nil
}

// grpcMethodMatch translates a uri match into a gRPC method match.
func grpcMethodMatch(s sluicev1beta1.StringMatch) (*gatewayv1.GRPCMethodMatch, error) {
	split := func(path string) (service, method string, ok bool) {
		service, method, _ = strings.Cut(strings.TrimPrefix(path, "/"), "/")
		return service, method, strings.HasPrefix(path, "/") && service != "" && !strings.Contains(method, "/")
	}
	match := func(t gatewayv1.GRPCMethodMatchType, service, method string) *gatewayv1.GRPCMethodMatch {
		mm := &gatewayv1.GRPCMethodMatch{Type: ptr(t)}
		if service != "" {
			mm.Service = ptr(service)
		}
		if method != "" {
			mm.Method = ptr(method)
		}
		return mm
	}
	switch {
	case s.Exact != "":
		service, method, ok := split(s.Exact)
		if !ok || method == "" {
			return nil, fmt.Errorf("uri exact %q is not a gRPC method: use /<package.Service>/<Method>", s.Exact)
		}
		return match(gatewayv1.GRPCMethodMatchExact, service, method), nil
	case s.Prefix == "/":
		return nil, nil // every call, as an empty method match
	case s.Prefix != "":
		service, method, ok := split(s.Prefix)
		if !ok || method != "" {
			return nil, fmt.Errorf("uri prefix %q is not a gRPC service: use /<package.Service>/ to match every method of a service", s.Prefix)
		}
		return match(gatewayv1.GRPCMethodMatchExact, service, ""), nil
	case s.Regex != "":
		service, method, ok := split(s.Regex)
		if !ok {
			return nil, fmt.Errorf("uri regex %q is not a gRPC method expression: use /<service regex>/<method regex>", s.Regex)
		}
		return match(gatewayv1.GRPCMethodMatchRegularExpression, service, method), nil
	case s.Suffix != "":
		return nil, fmt.Errorf("a GRPCRoute cannot match a uri suffix: use uri regex /<service regex>/<method regex>")
	default:
		return nil, nil
	}
}

// mergeGRPCMatches combines the A/B conditions with the service's, as
// mergeMatches does for HTTPRoutes: every analysis match is ANDed with
// every service match; the analysis' method match wins, headers are united
// (the analysis wins on the same name).
func mergeGRPCMatches(analysis, service []gatewayv1.GRPCRouteMatch) []gatewayv1.GRPCRouteMatch {
	if len(analysis) == 0 {
		return service
	}
	if len(service) == 0 {
		return analysis
	}
	out := make([]gatewayv1.GRPCRouteMatch, 0, len(analysis)*len(service))
	for _, a := range analysis {
		for _, s := range service {
			m := *s.DeepCopy()
			if a.Method != nil {
				m.Method = a.Method.DeepCopy()
			}
			byName := map[string]gatewayv1.GRPCHeaderMatch{}
			for _, h := range append(append([]gatewayv1.GRPCHeaderMatch{}, m.Headers...), a.Headers...) {
				byName[strings.ToLower(string(h.Name))] = h
			}
			m.Headers = nil
			for _, k := range sortedKeys(byName) {
				m.Headers = append(m.Headers, byName[k])
			}
			out = append(out, m)
		}
	}
	return out
}
