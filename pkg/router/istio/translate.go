package istio

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istionet "istio.io/api/networking/v1alpha3"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// duration parses a Go duration string (e.g. 30s) into a protobuf duration;
// an empty string is nil.
func duration(field, s string) (*durationpb.Duration, error) {
	if s == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("invalid %s %q: %w", field, s, err)
	}
	return durationpb.New(d), nil
}

// stringMatch translates a Sluice string match; a suffix becomes a regex
// because Istio has no suffix match. An empty match is nil.
func stringMatch(m *sluicev1beta1.StringMatch) *istionet.StringMatch {
	if m == nil {
		return nil
	}
	switch {
	case m.Exact != "":
		return &istionet.StringMatch{MatchType: &istionet.StringMatch_Exact{Exact: m.Exact}}
	case m.Prefix != "":
		return &istionet.StringMatch{MatchType: &istionet.StringMatch_Prefix{Prefix: m.Prefix}}
	case m.Suffix != "":
		return &istionet.StringMatch{MatchType: &istionet.StringMatch_Regex{Regex: ".*" + regexp.QuoteMeta(m.Suffix) + "$"}}
	case m.Regex != "":
		return &istionet.StringMatch{MatchType: &istionet.StringMatch_Regex{Regex: m.Regex}}
	default:
		// An empty match matches any value.
		return &istionet.StringMatch{MatchType: &istionet.StringMatch_Regex{Regex: ".*"}}
	}
}

func stringMatches(in map[string]sluicev1beta1.StringMatch) map[string]*istionet.StringMatch {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*istionet.StringMatch, len(in))
	for k, v := range in {
		out[k] = stringMatch(&v)
	}
	return out
}

// httpMatch translates a Sluice match request into Istio's.
func httpMatch(m sluicev1beta1.HTTPMatchRequest) *istionet.HTTPMatchRequest {
	return &istionet.HTTPMatchRequest{
		Name:            m.Name,
		Uri:             stringMatch(m.URI),
		Scheme:          stringMatch(m.Scheme),
		Method:          stringMatch(m.Method),
		Authority:       stringMatch(m.Authority),
		Headers:         stringMatches(m.Headers),
		Port:            uint32(m.Port), //nolint:gosec // validated 1-65535
		SourceLabels:    maps.Clone(m.SourceLabels),
		Gateways:        slices.Clone(m.Gateways),
		QueryParams:     stringMatches(m.QueryParams),
		IgnoreUriCase:   m.IgnoreURICase,
		WithoutHeaders:  stringMatches(m.WithoutHeaders),
		SourceNamespace: m.SourceNamespace,
	}
}

// mergeMatch overlays the conditions of extra on base: the result holds
// when both hold (for a condition both set, extra wins).
func mergeMatch(base, extra sluicev1beta1.HTTPMatchRequest) sluicev1beta1.HTTPMatchRequest {
	out := *base.DeepCopy()
	if extra.Name != "" {
		out.Name = extra.Name
	}
	if extra.URI != nil {
		out.URI = extra.URI.DeepCopy()
	}
	if extra.Scheme != nil {
		out.Scheme = extra.Scheme.DeepCopy()
	}
	if extra.Method != nil {
		out.Method = extra.Method.DeepCopy()
	}
	if extra.Authority != nil {
		out.Authority = extra.Authority.DeepCopy()
	}
	if extra.Port != 0 {
		out.Port = extra.Port
	}
	if extra.IgnoreURICase {
		out.IgnoreURICase = true
	}
	if extra.SourceNamespace != "" {
		out.SourceNamespace = extra.SourceNamespace
	}
	if len(extra.Gateways) > 0 {
		out.Gateways = slices.Clone(extra.Gateways)
	}
	out.Headers = mergeMap(out.Headers, extra.Headers)
	out.QueryParams = mergeMap(out.QueryParams, extra.QueryParams)
	out.WithoutHeaders = mergeMap(out.WithoutHeaders, extra.WithoutHeaders)
	if len(extra.SourceLabels) > 0 {
		if out.SourceLabels == nil {
			out.SourceLabels = map[string]string{}
		}
		maps.Copy(out.SourceLabels, extra.SourceLabels)
	}
	return out
}

func mergeMap(base, extra map[string]sluicev1beta1.StringMatch) map[string]sluicev1beta1.StringMatch {
	if len(extra) == 0 {
		return base
	}
	if base == nil {
		base = map[string]sluicev1beta1.StringMatch{}
	}
	maps.Copy(base, extra)
	return base
}

// mergeMatches combines two lists of alternatives (each list holds when one
// of its entries holds) into the list that holds when both lists hold.
func mergeMatches(base, extra []sluicev1beta1.HTTPMatchRequest) []sluicev1beta1.HTTPMatchRequest {
	switch {
	case len(base) == 0:
		return extra
	case len(extra) == 0:
		return base
	}
	out := make([]sluicev1beta1.HTTPMatchRequest, 0, len(base)*len(extra))
	for _, e := range extra {
		for _, b := range base {
			out = append(out, mergeMatch(b, e))
		}
	}
	return out
}

func headerOps(h *sluicev1beta1.HeaderOperations) *istionet.Headers_HeaderOperations {
	if h == nil || (len(h.Add) == 0 && len(h.Set) == 0 && len(h.Remove) == 0) {
		return nil
	}
	return &istionet.Headers_HeaderOperations{Add: maps.Clone(h.Add), Set: maps.Clone(h.Set), Remove: slices.Clone(h.Remove)}
}

// headers translates request and response header operations.
func headers(h *sluicev1beta1.HeadersOperations) *istionet.Headers {
	if h == nil {
		return nil
	}
	out := &istionet.Headers{Request: headerOps(h.Request), Response: headerOps(h.Response)}
	if out.Request == nil && out.Response == nil {
		return nil
	}
	return out
}

func rewrite(r *sluicev1beta1.HTTPRewrite) *istionet.HTTPRewrite {
	if r == nil || (r.URI == "" && r.Authority == "") {
		return nil
	}
	return &istionet.HTTPRewrite{Uri: r.URI, Authority: r.Authority}
}

func retries(r *sluicev1beta1.HTTPRetry) (*istionet.HTTPRetry, error) {
	if r == nil {
		return nil, nil
	}
	d, err := duration("retries.perTryTimeout", r.PerTryTimeout)
	if err != nil {
		return nil, err
	}
	return &istionet.HTTPRetry{Attempts: r.Attempts, PerTryTimeout: d, RetryOn: r.RetryOn}, nil
}

func corsPolicy(p *sluicev1beta1.CorsPolicy) (*istionet.CorsPolicy, error) {
	if p == nil {
		return nil, nil
	}
	maxAge, err := duration("corsPolicy.maxAge", p.MaxAge)
	if err != nil {
		return nil, err
	}
	out := &istionet.CorsPolicy{
		AllowOrigin:   slices.Clone(p.AllowOrigin), //nolint:staticcheck // SA1019: Flagger's corsPolicy.allowOrigin, passed through as Istio still accepts it.
		AllowMethods:  slices.Clone(p.AllowMethods),
		AllowHeaders:  slices.Clone(p.AllowHeaders),
		ExposeHeaders: slices.Clone(p.ExposeHeaders),
		MaxAge:        maxAge,
	}
	for _, o := range p.AllowOrigins {
		out.AllowOrigins = append(out.AllowOrigins, stringMatch(&o))
	}
	if p.AllowCredentials != nil {
		out.AllowCredentials = wrapperspb.Bool(*p.AllowCredentials)
	}
	return out, nil
}

func uint32Value(v *int32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(uint32(*v)) //nolint:gosec // validated >= 0
}

// trafficPolicy translates the DestinationRule traffic policy.
func trafficPolicy(p *sluicev1beta1.TrafficPolicy) (*istionet.TrafficPolicy, error) {
	if p == nil {
		return nil, nil
	}
	out := &istionet.TrafficPolicy{}
	var err error
	if cp := p.ConnectionPool; cp != nil {
		out.ConnectionPool = &istionet.ConnectionPoolSettings{}
		if t := cp.TCP; t != nil {
			s := &istionet.ConnectionPoolSettings_TCPSettings{MaxConnections: t.MaxConnections}
			if s.ConnectTimeout, err = duration("connectionPool.tcp.connectTimeout", t.ConnectTimeout); err != nil {
				return nil, err
			}
			if s.MaxConnectionDuration, err = duration("connectionPool.tcp.maxConnectionDuration", t.MaxConnectionDuration); err != nil {
				return nil, err
			}
			if s.IdleTimeout, err = duration("connectionPool.tcp.idleTimeout", t.IdleTimeout); err != nil {
				return nil, err
			}
			out.ConnectionPool.Tcp = s
		}
		if h := cp.HTTP; h != nil {
			s := &istionet.ConnectionPoolSettings_HTTPSettings{
				Http1MaxPendingRequests:  h.HTTP1MaxPendingRequests,
				Http2MaxRequests:         h.HTTP2MaxRequests,
				MaxRequestsPerConnection: h.MaxRequestsPerConnection,
				MaxRetries:               h.MaxRetries,
				MaxConcurrentStreams:     h.MaxConcurrentStreams,
				UseClientProtocol:        h.UseClientProtocol,
			}
			if h.H2UpgradePolicy != "" {
				v, ok := istionet.ConnectionPoolSettings_HTTPSettings_H2UpgradePolicy_value[h.H2UpgradePolicy]
				if !ok {
					return nil, fmt.Errorf("invalid connectionPool.http.h2UpgradePolicy %q", h.H2UpgradePolicy)
				}
				s.H2UpgradePolicy = istionet.ConnectionPoolSettings_HTTPSettings_H2UpgradePolicy(v)
			}
			if s.IdleTimeout, err = duration("connectionPool.http.idleTimeout", h.IdleTimeout); err != nil {
				return nil, err
			}
			out.ConnectionPool.Http = s
		}
	}
	if lb := p.LoadBalancer; lb != nil {
		if out.LoadBalancer, err = loadBalancer(lb); err != nil {
			return nil, err
		}
	}
	if od := p.OutlierDetection; od != nil {
		s := &istionet.OutlierDetection{
			ConsecutiveErrors:              od.ConsecutiveErrors, //nolint:staticcheck // SA1019: Flagger's outlierDetection.consecutiveErrors, passed through as Istio still accepts it.
			Consecutive_5XxErrors:          uint32Value(od.Consecutive5xxErrors),
			ConsecutiveGatewayErrors:       uint32Value(od.ConsecutiveGatewayErrors),
			ConsecutiveLocalOriginFailures: uint32Value(od.ConsecutiveLocalOriginFailures),
			MaxEjectionPercent:             od.MaxEjectionPercent,
			MinHealthPercent:               od.MinHealthPercent,
			SplitExternalLocalOriginErrors: od.SplitExternalLocalOriginErrors,
		}
		if s.Interval, err = duration("outlierDetection.interval", od.Interval); err != nil {
			return nil, err
		}
		if s.BaseEjectionTime, err = duration("outlierDetection.baseEjectionTime", od.BaseEjectionTime); err != nil {
			return nil, err
		}
		out.OutlierDetection = s
	}
	if t := p.TLS; t != nil {
		s := &istionet.ClientTLSSettings{
			ClientCertificate: t.ClientCertificate,
			PrivateKey:        t.PrivateKey,
			CaCertificates:    t.CACertificates,
			CredentialName:    t.CredentialName,
			SubjectAltNames:   slices.Clone(t.SubjectAltNames),
			Sni:               t.SNI,
		}
		if t.Mode != "" {
			v, ok := istionet.ClientTLSSettings_TLSmode_value[t.Mode]
			if !ok {
				return nil, fmt.Errorf("invalid tls.mode %q", t.Mode)
			}
			s.Mode = istionet.ClientTLSSettings_TLSmode(v)
		}
		if t.InsecureSkipVerify != nil {
			s.InsecureSkipVerify = wrapperspb.Bool(*t.InsecureSkipVerify)
		}
		out.Tls = s
	}
	return out, nil
}

func loadBalancer(lb *sluicev1beta1.LoadBalancerSettings) (*istionet.LoadBalancerSettings, error) {
	out := &istionet.LoadBalancerSettings{}
	var err error
	switch {
	case lb.Simple != "":
		v, ok := istionet.LoadBalancerSettings_SimpleLB_value[lb.Simple]
		if !ok {
			return nil, fmt.Errorf("invalid loadBalancer.simple %q", lb.Simple)
		}
		out.LbPolicy = &istionet.LoadBalancerSettings_Simple{Simple: istionet.LoadBalancerSettings_SimpleLB(v)}
	case lb.ConsistentHash != nil:
		ch := lb.ConsistentHash
		s := &istionet.LoadBalancerSettings_ConsistentHashLB{MinimumRingSize: uint64(ch.MinimumRingSize)} //nolint:gosec,staticcheck // validated >= 0; deprecated but still served
		switch {
		case ch.HTTPHeaderName != "":
			s.HashKey = &istionet.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName{HttpHeaderName: ch.HTTPHeaderName}
		case ch.HTTPCookie != nil:
			ttl, err := duration("loadBalancer.consistentHash.httpCookie.ttl", ch.HTTPCookie.TTL)
			if err != nil {
				return nil, err
			}
			s.HashKey = &istionet.LoadBalancerSettings_ConsistentHashLB_HttpCookie{HttpCookie: &istionet.LoadBalancerSettings_ConsistentHashLB_HTTPCookie{
				Name: ch.HTTPCookie.Name, Path: ch.HTTPCookie.Path, Ttl: ttl}}
		case ch.UseSourceIP != nil:
			s.HashKey = &istionet.LoadBalancerSettings_ConsistentHashLB_UseSourceIp{UseSourceIp: *ch.UseSourceIP}
		case ch.HTTPQueryParameterName != "":
			s.HashKey = &istionet.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName{HttpQueryParameterName: ch.HTTPQueryParameterName}
		}
		out.LbPolicy = &istionet.LoadBalancerSettings_ConsistentHash{ConsistentHash: s}
	}
	if l := lb.LocalityLbSetting; l != nil {
		s := &istionet.LocalityLoadBalancerSetting{}
		for _, d := range l.Distribute {
			to := make(map[string]uint32, len(d.To))
			for k, v := range d.To {
				to[k] = uint32(v) //nolint:gosec // weights are percentages
			}
			s.Distribute = append(s.Distribute, &istionet.LocalityLoadBalancerSetting_Distribute{From: d.From, To: to})
		}
		for _, f := range l.Failover {
			s.Failover = append(s.Failover, &istionet.LocalityLoadBalancerSetting_Failover{From: f.From, To: f.To})
		}
		if l.Enabled != nil {
			s.Enabled = wrapperspb.Bool(*l.Enabled)
		}
		out.LocalityLbSetting = s
	}
	//nolint:staticcheck // SA1019: Flagger's loadBalancer.warmupDurationSecs, passed through as Istio still accepts it.
	if out.WarmupDurationSecs, err = duration("loadBalancer.warmupDurationSecs", lb.WarmupDurationSecs); err != nil {
		return nil, err
	}
	return out, nil
}
