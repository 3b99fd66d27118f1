package gatewayapi

import (
	"math"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

func canary() *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1"},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  Name,
			TargetRef: sluicev1beta1.TargetReference{Name: "web"},
			Service:   sluicev1beta1.CanaryService{Port: 8080, GatewayRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
			Analysis:  &sluicev1beta1.CanaryAnalysis{StepWeight: 10},
		},
	}
}

func names(rules []gatewayv1.HTTPRouteRule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, string(*r.Name))
	}
	return out
}

func TestDuration(t *testing.T) {
	g := NewWithT(t)
	for in, want := range map[string]string{"30s": "30s", "1.5s": "1s500ms", "90m": "1h30m", "250ms": "250ms", "0s": "0s", "2h0m3s": "2h3s"} {
		got, err := duration(in)
		g.Expect(err).NotTo(HaveOccurred(), in)
		g.Expect(string(*got)).To(Equal(want), in)
		g.Expect(regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`).MatchString(want)).To(BeTrue())
	}
	_, err := duration("1us")
	g.Expect(err).To(MatchError(ContainSubstring("whole milliseconds")))
	d, err := duration("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d).To(BeNil())
}

func TestTranslateMatch(t *testing.T) {
	g := NewWithT(t)
	ms, err := translateMatches([]sluicev1beta1.HTTPMatchRequest{{
		URI:         &sluicev1beta1.StringMatch{Prefix: "/api"},
		Method:      &sluicev1beta1.StringMatch{Exact: "get"},
		Headers:     map[string]sluicev1beta1.StringMatch{"x-b": {Prefix: "v1."}, "x-a": {Exact: "1"}, "x-c": {}},
		QueryParams: map[string]sluicev1beta1.StringMatch{"q": {Regex: "a+"}},
	}, {URI: &sluicev1beta1.StringMatch{Exact: "/x"}}, {URI: &sluicev1beta1.StringMatch{Regex: "/v[0-9]+"}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ms).To(HaveLen(3))
	g.Expect(*ms[0].Path.Type).To(Equal(gatewayv1.PathMatchPathPrefix))
	g.Expect(*ms[0].Method).To(Equal(gatewayv1.HTTPMethod("GET")))
	g.Expect(ms[0].Headers).To(Equal([]gatewayv1.HTTPHeaderMatch{
		{Name: "x-a", Type: ptr(gatewayv1.HeaderMatchExact), Value: "1"},
		{Name: "x-b", Type: ptr(gatewayv1.HeaderMatchRegularExpression), Value: `^v1\..*`},
		{Name: "x-c", Type: ptr(gatewayv1.HeaderMatchRegularExpression), Value: ".*"},
	}))
	g.Expect(ms[0].QueryParams).To(Equal([]gatewayv1.HTTPQueryParamMatch{{Name: "q", Type: ptr(gatewayv1.QueryParamMatchRegularExpression), Value: "a+"}}))
	g.Expect(*ms[1].Path.Type).To(Equal(gatewayv1.PathMatchExact))
	g.Expect(*ms[2].Path.Type).To(Equal(gatewayv1.PathMatchRegularExpression))

	for _, bad := range []sluicev1beta1.HTTPMatchRequest{
		{IgnoreURICase: true}, {WithoutHeaders: map[string]sluicev1beta1.StringMatch{"a": {}}},
		{Authority: &sluicev1beta1.StringMatch{Exact: "a"}}, {SourceLabels: map[string]string{"a": "b"}},
		{Method: &sluicev1beta1.StringMatch{Regex: "G.*"}},
	} {
		_, err := translateMatches([]sluicev1beta1.HTTPMatchRequest{bad})
		g.Expect(err).To(HaveOccurred(), "%+v", bad)
	}
}

func TestMergeMatches(t *testing.T) {
	g := NewWithT(t)
	svc := []gatewayv1.HTTPRouteMatch{
		{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/api")},
			Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-env", Value: "prod"}, {Name: "x-user", Value: "any"}}},
		{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/web")}},
	}
	ab := []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "X-User", Value: "insider"}}}}
	got := mergeMatches(ab, svc)
	g.Expect(got).To(HaveLen(2))
	g.Expect(*got[0].Path.Value).To(Equal("/api"))
	g.Expect(got[0].Headers).To(Equal([]gatewayv1.HTTPHeaderMatch{{Name: "x-env", Value: "prod"}, {Name: "X-User", Value: "insider"}}))
	g.Expect(*got[1].Path.Value).To(Equal("/web"))
	g.Expect(got[1].Headers).To(Equal(ab[0].Headers))
	g.Expect(mergeMatches(ab, nil)).To(Equal(ab))
	g.Expect(mergeMatches(nil, svc)).To(Equal(svc))
	// The service matches are not modified.
	g.Expect(svc[0].Headers).To(HaveLen(2))
}

func TestCookieMatch(t *testing.T) {
	g := NewWithT(t)
	re := regexp.MustCompile(cookieMatch("sticky=ab.c").Headers[0].Value)
	for header, want := range map[string]bool{
		"sticky=ab.c": true, "a=1; sticky=ab.c": true, "sticky=ab.c; b=2": true, "a=1;sticky=ab.c;b=2": true,
		"sticky=abXc": false, "notsticky=ab.c": false, "sticky=ab.cd": false, "a=sticky=ab.c": false,
	} {
		g.Expect(re.MatchString(header)).To(Equal(want), header)
	}
}

func TestFilters(t *testing.T) {
	g := NewWithT(t)
	c := canary()
	c.Spec.Service.Headers = &sluicev1beta1.HeadersOperations{
		Request:  &sluicev1beta1.HeaderOperations{Set: map[string]string{"b": "2", "a": "1"}, Remove: []string{"z", "y"}},
		Response: &sluicev1beta1.HeaderOperations{Add: map[string]string{"x-served-by": "sluice"}},
	}
	c.Spec.Service.Rewrite = &sluicev1beta1.HTTPRewrite{URI: "/v2", Authority: "internal.example.com"}
	c.Spec.Service.Timeout, c.Spec.Service.BackendTimeout = "30s", "10s"
	c.Spec.Service.CorsPolicy = &sluicev1beta1.CorsPolicy{AllowOrigin: []string{"https://a.example.com"},
		AllowOrigins: []sluicev1beta1.StringMatch{{Exact: "https://*.example.org"}}, AllowMethods: []string{"get"}, MaxAge: "24h"}
	c.Spec.Service.Mirror = []gatewayv1.HTTPRequestMirrorFilter{{BackendRef: gatewayv1.BackendObjectReference{Name: "shadow"}}}
	rules, err := Rules(c, router.Routes{PrimaryWeight: 100})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules).To(HaveLen(1))
	f := rules[0].Filters
	g.Expect(f).To(HaveLen(5))
	g.Expect(f[0].RequestHeaderModifier.Set).To(Equal([]gatewayv1.HTTPHeader{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}))
	g.Expect(f[0].RequestHeaderModifier.Remove).To(Equal([]string{"y", "z"}))
	g.Expect(f[1].ResponseHeaderModifier.Add).To(Equal([]gatewayv1.HTTPHeader{{Name: "x-served-by", Value: "sluice"}}))
	g.Expect(f[2].URLRewrite).To(Equal(&gatewayv1.HTTPURLRewriteFilter{Hostname: ptr(gatewayv1.PreciseHostname("internal.example.com")),
		Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr("/v2")}}))
	g.Expect(f[3].CORS.AllowOrigins).To(Equal([]gatewayv1.CORSOrigin{"https://a.example.com", "https://*.example.org"}))
	g.Expect(f[3].CORS.MaxAge).To(Equal(int32(86400)))
	g.Expect(f[4].Type).To(Equal(gatewayv1.HTTPRouteFilterRequestMirror))
	g.Expect(rules[0].Timeouts).To(Equal(&gatewayv1.HTTPRouteTimeouts{Request: ptr(gatewayv1.Duration("30s")), BackendRequest: ptr(gatewayv1.Duration("10s"))}))

	c.Spec.Service.Rewrite.Type = "ReplaceFullPath"
	rules, err = Rules(c, router.Routes{PrimaryWeight: 100})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules[0].Filters[2].URLRewrite.Path).To(Equal(&gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr("/v2")}))

	c.Spec.Service.CorsPolicy.AllowOrigins = []sluicev1beta1.StringMatch{{Prefix: "https://"}}
	_, err = Rules(c, router.Routes{PrimaryWeight: 100})
	g.Expect(err).To(MatchError(ContainSubstring("corsPolicy")))
}

func TestSessionAffinityRules(t *testing.T) {
	g := NewWithT(t)
	c := canary()
	c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "sticky", PrimaryCookieName: "stay", Path: "/", HTTPOnly: true}
	c.Spec.Service.Headers = &sluicev1beta1.HeadersOperations{Response: &sluicev1beta1.HeaderOperations{Add: map[string]string{"x-a": "1"}}}

	// Before the engine issues a cookie: only the weighted rule.
	rules, err := Rules(c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names(rules)).To(Equal([]string{RuleWeighted}))

	c.Status.SessionAffinityCookie, c.Status.PrimarySessionAffinityCookie = "sticky=new", "stay=p"
	rules, err = Rules(c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names(rules)).To(Equal([]string{RuleCanaryCookie, RulePrimaryCookie, RuleWeighted}))
	g.Expect(*rules[0].BackendRefs[1].Weight).To(Equal(int32(100)))
	g.Expect(rules[2].BackendRefs[1].Filters[0].ResponseHeaderModifier.Add).To(Equal([]gatewayv1.HTTPHeader{
		{Name: "Set-Cookie", Value: "sticky=new; Max-Age=86400; Path=/; HttpOnly"}}))
	g.Expect(rules[2].BackendRefs[0].Filters[0].ResponseHeaderModifier.Add).To(Equal([]gatewayv1.HTTPHeader{
		{Name: "Set-Cookie", Value: "stay=p; Max-Age=60; Path=/; HttpOnly"}}))

	// After promotion: the cookies are expired, in the rule's one
	// ResponseHeaderModifier.
	c.Status.PreviousSessionAffinityCookie = "sticky=old"
	rules, err = Rules(c, router.Routes{PrimaryWeight: 100})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names(rules)).To(Equal([]string{RuleExpireCookie, RuleExpirePreviousCookie, RuleWeighted}))
	g.Expect(rules[0].Filters).To(HaveLen(1))
	g.Expect(rules[0].Filters[0].ResponseHeaderModifier.Add).To(Equal([]gatewayv1.HTTPHeader{
		{Name: "x-a", Value: "1"}, {Name: "Set-Cookie", Value: "sticky=new; Max-Age=-1; Path=/; HttpOnly"}}))
	g.Expect(rules[1].Filters[0].ResponseHeaderModifier.Add[1].Value).To(Equal("sticky=old; Max-Age=-1; Path=/; HttpOnly"))
	g.Expect(rules[2].BackendRefs[1].Filters).To(BeEmpty())
}

func TestBuild_KeepsUserRulesAndRecordsTheOriginal(t *testing.T) {
	g := NewWithT(t)
	c := canary()
	live := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "web", "namespace": "ns"},
		"spec": map[string]any{"rules": []any{
			map[string]any{"name": "legacy", "matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/legacy"}}},
				"backendRefs": []any{map[string]any{"name": "legacy", "port": int64(80)}}},
			map[string]any{"backendRefs": []any{map[string]any{"name": "web-primary", "port": int64(8080)}, map[string]any{"name": "web-canary", "port": int64(8080)}}},
			map[string]any{"name": "sluice-ab"},
		}},
	}}
	obj, err := Build(c, router.Routes{PrimaryWeight: 100}, live)
	g.Expect(err).NotTo(HaveOccurred())
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	g.Expect(rules).To(HaveLen(2))
	g.Expect(rules[0]).To(HaveKeyWithValue("name", RuleWeighted))
	g.Expect(rules[1]).To(HaveKeyWithValue("name", "legacy"))
	g.Expect(obj.GetAnnotations()).To(HaveKey(router.OriginalAnnotation))
	g.Expect(obj.GetOwnerReferences()).To(BeEmpty(), "a route Sluice did not create gets no owner reference")

	created, err := Build(c, router.Routes{PrimaryWeight: 100}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(created.GetOwnerReferences()).To(HaveLen(1))
	g.Expect(*created.GetOwnerReferences()[0].Controller).To(BeTrue())
	g.Expect(created.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
}

func TestSubset(t *testing.T) {
	g := NewWithT(t)
	g.Expect(subset(map[string]any{"a": []any{map[string]any{"b": 1.0}}}, map[string]any{"a": []any{map[string]any{"b": 1.0, "c": "x"}}, "d": 2.0})).To(BeTrue())
	g.Expect(subset(map[string]any{"a": []any{1.0}}, map[string]any{"a": []any{1.0, 2.0}})).To(BeFalse())
	g.Expect(subset(map[string]any{"a": 1.0}, map[string]any{"a": 2.0})).To(BeFalse())
	g.Expect(subset(map[string]any{"a": "x"}, map[string]any{})).To(BeFalse())
}

// A maxAge past int32 seconds means "cache for good"; it must not wrap to a
// negative HTTPCORSFilter.maxAge that the API server refuses.
func TestCorsFilter_MaxAgeClampedToInt32(t *testing.T) {
	g := NewWithT(t)
	f, err := corsFilter(&sluicev1beta1.CorsPolicy{MaxAge: "1000000h"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.MaxAge).To(Equal(int32(math.MaxInt32)))
	f, err = corsFilter(&sluicev1beta1.CorsPolicy{MaxAge: "24h"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.MaxAge).To(Equal(int32(86400)))
}
