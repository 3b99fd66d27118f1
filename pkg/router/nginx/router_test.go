package nginx_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/nginx"
)

const prefix = "nginx.ingress.kubernetes.io/"

func setup(t *testing.T, analysis sluicev1beta1.CanaryAnalysis) (*sluicev1beta1.Canary, *nginx.Router) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "nginx")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Analysis = &analysis
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	return c, nginx.New(env.Client)
}

func canaryIngress(g Gomega, c *sluicev1beta1.Canary) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: c.Namespace, Name: "app-canary"}, ing)).To(Succeed())
	return ing
}

func TestRouter_CanaryIngress(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, sluicev1beta1.CanaryAnalysis{StepWeight: 10})
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	ing := canaryIngress(g, c)
	// Only the path to the apex is copied, sent to the canary Service.
	g.Expect(ing.Spec.Rules).To(HaveLen(1))
	g.Expect(ing.Spec.Rules[0].Host).To(Equal("app.example.com"))
	g.Expect(ing.Spec.Rules[0].HTTP.Paths).To(HaveLen(1))
	g.Expect(ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name).To(Equal("app-canary"))
	g.Expect(*ing.Spec.IngressClassName).To(Equal("nginx"))
	// The user's annotations are copied, but not their canary ones nor kubectl's.
	g.Expect(ing.Annotations).To(Equal(map[string]string{
		prefix + "proxy-body-size": "8m", prefix + "canary": "true", prefix + "canary-weight": "0"}))
	g.Expect(ing.Labels).To(HaveKeyWithValue("team", "web"))
	g.Expect(ing.Labels).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "app"))
	g.Expect(router.ControlledBy(ing, c.UID)).To(BeTrue())

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	g.Expect(canaryIngress(g, c).Annotations).To(HaveKeyWithValue(prefix+"canary-weight", "30"))
	// Nothing is written when nothing changed.
	rv := canaryIngress(g, c).ResourceVersion
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	g.Expect(canaryIngress(g, c).ResourceVersion).To(Equal(rv))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 20})).To(MatchError(ContainSubstring("invalid weights")))
}

func TestRouter_ABTesting(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		match map[string]sluicev1beta1.StringMatch
		want  map[string]string
	}{
		{name: "exact header", match: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}},
			want: map[string]string{"canary-by-header": "x-canary", "canary-by-header-value": "insider"}},
		{name: "regex header", match: map[string]sluicev1beta1.StringMatch{"user-agent": {Regex: ".*Firefox.*"}},
			want: map[string]string{"canary-by-header": "user-agent", "canary-by-header-pattern": ".*Firefox.*"}},
		{name: "prefix header", match: map[string]sluicev1beta1.StringMatch{"x-user": {Prefix: "a.b"}},
			want: map[string]string{"canary-by-header": "x-user", "canary-by-header-pattern": `^a\.b.*`}},
		{name: "cookie and header", match: map[string]sluicev1beta1.StringMatch{"cookie": {Exact: "canary"}, "x-canary": {Exact: "1"}},
			want: map[string]string{"canary-by-cookie": "canary", "canary-by-header": "x-canary", "canary-by-header-value": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, rt := setup(t, sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{{Headers: tt.match}}})
			g.Expect(rt.CheckSpec(c)).To(BeEmpty())
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
			ann := canaryIngress(g, c).Annotations
			for k, v := range tt.want {
				g.Expect(ann).To(HaveKeyWithValue(prefix+k, v))
			}
			g.Expect(ann).To(HaveKeyWithValue(prefix+"canary-weight", "0"), "only matching requests go to the canary")
			// Back to the primary: the matches are removed.
			g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100})).To(Succeed())
			ann = canaryIngress(g, c).Annotations
			for k := range tt.want {
				g.Expect(ann).NotTo(HaveKey(prefix + k))
			}
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
		})
	}
}

func TestRouter_CheckSpec(t *testing.T) {
	match := func(ms ...sluicev1beta1.HTTPMatchRequest) *sluicev1beta1.CanaryAnalysis {
		return &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: ms}
	}
	tests := []struct {
		name   string
		mutate func(c *sluicev1beta1.Canary)
		want   string
	}{
		{name: "no ingressRef", mutate: func(c *sluicev1beta1.Canary) { c.Spec.IngressRef = nil }, want: "provider nginx needs spec.ingressRef"},
		{name: "ingress in another namespace", mutate: func(c *sluicev1beta1.Canary) { c.Spec.IngressRef.Namespace = "other" }, want: "in the Canary's namespace"},
		{name: "two headers", mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis = match(sluicev1beta1.HTTPMatchRequest{Headers: map[string]sluicev1beta1.StringMatch{"a": {Exact: "1"}}},
				sluicev1beta1.HTTPMatchRequest{Headers: map[string]sluicev1beta1.StringMatch{"b": {Exact: "1"}}})
		}, want: "one header only: analysis.match names a and b"},
		{name: "uri match", mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis = match(sluicev1beta1.HTTPMatchRequest{URI: &sluicev1beta1.StringMatch{Prefix: "/api"}})
		}, want: "remove analysis.match[0] fields other than headers"},
		{name: "cookie without a name", mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis = match(sluicev1beta1.HTTPMatchRequest{Headers: map[string]sluicev1beta1.StringMatch{"cookie": {Regex: ".*"}}})
		}, want: "headers.cookie.exact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := newCanary("ns")
			c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
			tt.mutate(c)
			rt := nginx.New(nil)
			g.Expect(router.Unsupported(rt, c, nginx.Name)).To(ContainElement(ContainSubstring(tt.want)))
		})
	}
}

func TestRouter_DoesNotTakeOverAnIngress(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, sluicev1beta1.CanaryAnalysis{StepWeight: 10})
	theirs := userIngress(c.Namespace, "app")
	theirs.ObjectMeta = metav1.ObjectMeta{Name: "app-canary", Namespace: c.Namespace}
	g.Expect(env.Client.Create(ctx, theirs)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("Ingress app-canary exists and was not created by Sluice")))
	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(theirs), &networkingv1.Ingress{})).To(Succeed(), "Finalize deleted an Ingress Sluice did not create")
}

func TestRouter_NoPathToTheApex(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, sluicev1beta1.CanaryAnalysis{StepWeight: 10})
	c.Spec.Service.Name = "elsewhere"
	g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("Ingress app has no path that sends to Service elsewhere")))
}
