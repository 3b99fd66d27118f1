package kuma_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/kuma"
)

func meshService(name, ns string) map[string]any {
	return map[string]any{kuma.DisplayNameLabel: name, kuma.NamespaceLabel: ns}
}

func backendRef(name, ns string, weight int64) any {
	return map[string]any{"kind": "MeshService", "labels": meshService(name, ns), "port": int64(8080), "weight": weight}
}

// TestRouter_MeshHTTPRoute checks on the API server the MeshHTTPRoute of a
// progressive canary, in the shape of Kuma's "split traffic between two
// destinations" example: a producer policy (targetRef Mesh) for the apex
// MeshService whose rule weighs the primary and canary MeshServices, in
// the default mesh unless the apex labels name another.
func TestRouter_MeshHTTPRoute(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 90, CanaryWeight: 10})).To(Succeed())
	live := get(g, c.Namespace)
	g.Expect(live.Object["spec"]).To(Equal(map[string]any{
		"targetRef": map[string]any{"kind": "Mesh"},
		"to": []any{map[string]any{
			"targetRef": map[string]any{"kind": "MeshService", "labels": meshService("app", c.Namespace)},
			"rules": []any{map[string]any{
				"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
				"default": map[string]any{"backendRefs": []any{backendRef("app-primary", c.Namespace, 90), backendRef("app-canary", c.Namespace, 10)}},
			}},
		}},
	}))
	g.Expect(live.GetLabels()).To(HaveKeyWithValue(kuma.MeshLabel, "default"))
	rv := live.GetResourceVersion()
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get(g, c.Namespace).GetResourceVersion()).To(Equal(rv), "an idle reconcile wrote")

	c.Spec.Service.Apex = &sluicev1beta1.CustomMetadata{Labels: map[string]string{kuma.MeshLabel: "payments"}}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get(g, c.Namespace).GetLabels()).To(HaveKeyWithValue(kuma.MeshLabel, "payments"))
}

// TestRender_ABTesting checks the A/B rules: the analysis' matches
// (headers, path, method, query parameters) to the weighted backends,
// everything else to the primary, and errors for what Kuma cannot match.
func TestRender_ABTesting(t *testing.T) {
	g := NewWithT(t)
	c := newCanary("web")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}, "cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
		{URI: &sluicev1beta1.StringMatch{Prefix: "/beta"}, Method: &sluicev1beta1.StringMatch{Exact: "GET"},
			QueryParams: map[string]sluicev1beta1.StringMatch{"preview": {Exact: "1"}}},
	}}
	spec, err := kuma.Render(c, router.Routes{CanaryWeight: 100})
	g.Expect(err).NotTo(HaveOccurred())
	rules := spec["to"].([]any)[0].(map[string]any)["rules"].([]any)
	g.Expect(rules).To(Equal([]any{
		map[string]any{
			"matches": []any{
				map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}, "headers": []any{
					map[string]any{"name": "cookie", "type": "RegularExpression", "value": "^(.*?;)?(canary=always)(;.*)?$"},
					map[string]any{"name": "x-canary", "type": "Exact", "value": "insider"},
				}},
				map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/beta"}, "method": "GET",
					"queryParams": []any{map[string]any{"name": "preview", "type": "Exact", "value": "1"}}},
			},
			"default": map[string]any{"backendRefs": []any{backendRef("app-primary", "web", 0), backendRef("app-canary", "web", 100)}},
		},
		map[string]any{
			"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
			"default": map[string]any{"backendRefs": []any{backendRef("app-primary", "web", 100)}},
		},
	}))

	for _, m := range []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x": {Suffix: "a"}}},
		{SourceLabels: map[string]string{"app": "web"}},
		{Method: &sluicev1beta1.StringMatch{Prefix: "G"}},
	} {
		c.Spec.Analysis.Match = []sluicev1beta1.HTTPMatchRequest{m}
		_, err := kuma.Render(c, router.Routes{PrimaryWeight: 100})
		g.Expect(err).To(MatchError(ContainSubstring("spec.analysis.match[0]")), "%+v", m)
	}
}

func setup(t *testing.T) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "kuma-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	kuma.Register(reg)
	rt, err := reg.New(kuma.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}
