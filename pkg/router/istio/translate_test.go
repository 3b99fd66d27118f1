package istio

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

func mustMap(t *testing.T, c *sluicev1beta1.Canary, r router.Routes, ports []Port) map[string]any {
	t.Helper()
	vs, err := VirtualService(c, r, ports)
	if err != nil {
		t.Fatal(err)
	}
	m, err := toMap(&vs.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return normalize(m).(map[string]any)
}

func baseCanary() *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{}
	c.Name, c.Namespace = "web", "prod"
	c.Spec.TargetRef.Name = "web"
	c.Spec.Service.Port = 80
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	return c
}

func TestStringMatch_SuffixBecomesRegex(t *testing.T) {
	g := NewWithT(t)
	m := stringMatch(&sluicev1beta1.StringMatch{Suffix: ".example.com"})
	g.Expect(m.GetRegex()).To(Equal(`.*\.example\.com$`))
	g.Expect(stringMatch(&sluicev1beta1.StringMatch{Exact: "a"}).GetExact()).To(Equal("a"))
	g.Expect(stringMatch(&sluicev1beta1.StringMatch{Prefix: "/api"}).GetPrefix()).To(Equal("/api"))
	g.Expect(stringMatch(&sluicev1beta1.StringMatch{Regex: "x+"}).GetRegex()).To(Equal("x+"))
	g.Expect(stringMatch(nil)).To(BeNil())
}

func TestMergeMatches_CrossProduct(t *testing.T) {
	g := NewWithT(t)
	service := []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/"}, Headers: map[string]sluicev1beta1.StringMatch{"a": {Exact: "1"}}}}
	analysis := []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}},
		{QueryParams: map[string]sluicev1beta1.StringMatch{"beta": {Exact: "1"}}},
	}
	got := mergeMatches(service, analysis)
	g.Expect(got).To(HaveLen(2))
	g.Expect(got[0].URI.Prefix).To(Equal("/"))
	g.Expect(got[0].Headers).To(HaveLen(2))
	g.Expect(got[1].Headers).To(HaveKey("a"))
	g.Expect(got[1].QueryParams).To(HaveKey("beta"))
	// The inputs are not modified.
	g.Expect(service[0].Headers).To(HaveLen(1))
	g.Expect(mergeMatches(nil, analysis)).To(Equal(analysis))
	g.Expect(mergeMatches(service, nil)).To(Equal(service))
}

func TestVirtualService_RouteOptions(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	c.Spec.Service.Timeout = "30s"
	c.Spec.Service.Rewrite = &sluicev1beta1.HTTPRewrite{URI: "/v2", Authority: "api"}
	c.Spec.Service.Retries = &sluicev1beta1.HTTPRetry{Attempts: 2, PerTryTimeout: "500ms", RetryOn: "5xx"}
	c.Spec.Service.Headers = &sluicev1beta1.HeadersOperations{
		Request:  &sluicev1beta1.HeaderOperations{Add: map[string]string{"x-a": "1"}, Remove: []string{"x-b"}},
		Response: &sluicev1beta1.HeaderOperations{Set: map[string]string{"x-c": "2"}},
	}
	c.Spec.Service.CorsPolicy = &sluicev1beta1.CorsPolicy{AllowOrigins: []sluicev1beta1.StringMatch{{Suffix: ".example.com"}}, MaxAge: "24h", AllowCredentials: ptr.To(true)}
	c.Spec.Service.Hosts = []string{"web.example.com"}
	spec := mustMap(t, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30}, nil)
	g.Expect(spec["hosts"]).To(Equal([]any{"web.example.com", "web"}))
	g.Expect(spec["gateways"]).To(Equal([]any{"mesh"}))
	rule := spec["http"].([]any)[0].(map[string]any)
	g.Expect(rule["name"]).To(Equal("sluice-canary"))
	g.Expect(rule["timeout"]).To(Equal("30s"))
	g.Expect(rule["rewrite"]).To(Equal(map[string]any{"uri": "/v2", "authority": "api"}))
	g.Expect(rule["retries"]).To(Equal(map[string]any{"attempts": 2.0, "perTryTimeout": "0.500s", "retryOn": "5xx"}))
	g.Expect(rule["headers"]).To(Equal(map[string]any{
		"request":  map[string]any{"add": map[string]any{"x-a": "1"}, "remove": []any{"x-b"}},
		"response": map[string]any{"set": map[string]any{"x-c": "2"}},
	}))
	g.Expect(rule["corsPolicy"]).To(Equal(map[string]any{
		"allowOrigins": []any{map[string]any{"regex": `.*\.example\.com$`}}, "maxAge": "86400s", "allowCredentials": true}))
	p, cn := weights(c, rule)
	g.Expect([]int64{p, cn}).To(Equal([]int64{70, 30}))

	c.Spec.Service.Timeout = "soon"
	_, err := VirtualService(c, router.Routes{PrimaryWeight: 100}, nil)
	g.Expect(err).To(MatchError(ContainSubstring("invalid spec.service.timeout")))
}

func TestVirtualService_DelegationAndWildcard(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	c.Spec.Service.Delegation = true
	spec := mustMap(t, c, router.Routes{PrimaryWeight: 100}, nil)
	g.Expect(spec).NotTo(HaveKey("hosts"))
	g.Expect(spec).NotTo(HaveKey("gateways"))
	c.Spec.Service.Delegation = false
	c.Spec.Service.Hosts = []string{"*"}
	c.Spec.Service.Gateways = []string{"istio-system/public"}
	spec = mustMap(t, c, router.Routes{PrimaryWeight: 100}, nil)
	g.Expect(spec["hosts"]).To(Equal([]any{"*"}))
	g.Expect(spec["gateways"]).To(Equal([]any{"istio-system/public"}))
}

func TestVirtualService_MultiPortAndTCP(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	ports := []Port{{Name: "http", Number: 80}, {Name: "grpc", Number: 9090}}
	spec := mustMap(t, c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, ports)
	http := spec["http"].([]any)
	g.Expect(http).To(HaveLen(2))
	grpc := http[1].(map[string]any)
	g.Expect(grpc["name"]).To(Equal("sluice-canary-grpc"))
	g.Expect(grpc["match"]).To(Equal([]any{map[string]any{"port": 9090.0}}))
	d, _, _ := unstructured.NestedFieldNoCopy(grpc["route"].([]any)[1].(map[string]any), "destination", "port", "number")
	g.Expect(d).To(Equal(9090.0))

	c.Spec.Service.AppProtocol = "tcp"
	spec = mustMap(t, c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, nil)
	g.Expect(spec).NotTo(HaveKey("http"))
	tcp := spec["tcp"].([]any)
	g.Expect(tcp).To(HaveLen(1))
	p, cn := weights(c, tcp[0].(map[string]any))
	g.Expect([]int64{p, cn}).To(Equal([]int64{90, 10}))
}

func TestVirtualService_ABTesting(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	c.Spec.Service.Match = []sluicev1beta1.HTTPMatchRequest{{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}}}
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 5, Match: []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}}
	http := mustMap(t, c, router.Routes{CanaryWeight: 100}, nil)["http"].([]any)
	g.Expect(http).To(HaveLen(2))
	ab, def := http[0].(map[string]any), http[1].(map[string]any)
	g.Expect(ab["match"]).To(Equal([]any{map[string]any{
		"uri": map[string]any{"prefix": "/api"}, "headers": map[string]any{"x-canary": map[string]any{"exact": "insider"}}}}))
	p, cn := weights(c, ab)
	g.Expect([]int64{p, cn}).To(Equal([]int64{0, 100}))
	g.Expect(def["match"]).To(Equal([]any{map[string]any{"uri": map[string]any{"prefix": "/api"}}}))
	p, cn = weights(c, def)
	g.Expect([]int64{p, cn}).To(Equal([]int64{100, -1}))
}

func TestVirtualService_SessionAffinity(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "sticky", MaxAge: 60, Path: "/", HTTPOnly: true, Domain: "example.com", Partitioned: true}
	c.Status.SessionAffinityCookie = "sticky=abc"
	c.Status.PreviousSessionAffinityCookie = "sticky=old"
	http := mustMap(t, c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, nil)["http"].([]any)
	g.Expect(http).To(HaveLen(2))
	sticky, main := http[0].(map[string]any), http[1].(map[string]any)
	g.Expect(sticky["name"]).To(Equal("sluice-sticky-canary"))
	g.Expect(sticky["match"]).To(Equal([]any{map[string]any{"headers": map[string]any{"cookie": map[string]any{"regex": ".*sticky=abc.*"}}}}))
	p, cn := weights(c, sticky)
	g.Expect([]int64{p, cn}).To(Equal([]int64{-1, 100}))
	set, _, _ := unstructured.NestedString(main["route"].([]any)[1].(map[string]any), "headers", "response", "add", "Set-Cookie")
	g.Expect(set).To(Equal("sticky=abc; Max-Age=60; Domain=example.com; Path=/; HttpOnly; Partitioned"))
	expire, _, _ := unstructured.NestedString(main, "headers", "response", "add", "Set-Cookie")
	g.Expect(expire).To(Equal("sticky=old; Max-Age=-1; Domain=example.com; Path=/; HttpOnly; Partitioned"))

	// Out of a release (canary 0%) there is no sticky rule; the previous
	// cookie is still expired.
	http = mustMap(t, c, router.Routes{PrimaryWeight: 100}, nil)["http"].([]any)
	g.Expect(http).To(HaveLen(1))
	expire, _, _ = unstructured.NestedString(http[0].(map[string]any), "headers", "response", "add", "Set-Cookie")
	g.Expect(expire).To(HavePrefix("sticky=old; Max-Age=-1"))
}

func TestTrafficPolicy(t *testing.T) {
	g := NewWithT(t)
	c := baseCanary()
	c.Spec.Service.TrafficPolicy = &sluicev1beta1.TrafficPolicy{
		ConnectionPool: &sluicev1beta1.ConnectionPoolSettings{
			TCP:  &sluicev1beta1.TCPSettings{MaxConnections: 10, ConnectTimeout: "2s"},
			HTTP: &sluicev1beta1.HTTPSettings{H2UpgradePolicy: "UPGRADE", MaxRetries: 3},
		},
		LoadBalancer: &sluicev1beta1.LoadBalancerSettings{Simple: "LEAST_REQUEST", WarmupDurationSecs: "1m",
			LocalityLbSetting: &sluicev1beta1.LocalityLoadBalancerSetting{Enabled: ptr.To(true),
				Distribute: []sluicev1beta1.LocalityLoadBalancerDistribute{{From: "a/*", To: map[string]int32{"a/*": 80, "b/*": 20}}}}},
		OutlierDetection: &sluicev1beta1.OutlierDetection{Consecutive5xxErrors: ptr.To(int32(0)), Interval: "10s"},
		TLS:              &sluicev1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL", SNI: "web"},
	}
	primary, canary, err := DestinationRules(c)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(primary.Name).To(Equal("web-primary"))
	g.Expect(canary.Spec.Host).To(Equal("web-canary"))
	m, err := toMap(&primary.Spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(normalize(m)).To(Equal(normalize(map[string]any{
		"host": "web-primary",
		"trafficPolicy": map[string]any{
			"connectionPool": map[string]any{
				"tcp":  map[string]any{"maxConnections": 10, "connectTimeout": "2s"},
				"http": map[string]any{"h2UpgradePolicy": "UPGRADE", "maxRetries": 3},
			},
			"loadBalancer": map[string]any{"simple": "LEAST_REQUEST", "warmupDurationSecs": "60s",
				"localityLbSetting": map[string]any{"enabled": true, "distribute": []any{map[string]any{"from": "a/*", "to": map[string]any{"a/*": 80, "b/*": 20}}}}},
			"outlierDetection": map[string]any{"consecutive5xxErrors": 0, "interval": "10s"},
			"tls":              map[string]any{"mode": "ISTIO_MUTUAL", "sni": "web"},
		},
	})))

	c.Spec.Service.TrafficPolicy.TLS.Mode = "BOGUS"
	_, _, err = DestinationRules(c)
	g.Expect(err).To(MatchError(ContainSubstring("invalid tls.mode")))
}
