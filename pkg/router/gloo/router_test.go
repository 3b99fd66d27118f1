package gloo_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gloo"
)

func setup(t *testing.T) (*sluicev1beta1.Canary, router.Router) {
	t.Helper()
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "gloo-router")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	g.Expect(prepare(context.Background(), env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	gloo.Register(reg)
	rt, err := reg.New(gloo.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	return c, rt
}

func get(g Gomega, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

func dest(ns, name string, weight int64) any {
	return map[string]any{"destination": map[string]any{"upstream": map[string]any{"name": name, "namespace": ns}}, "weight": weight}
}

// TestRouter_UpstreamsAndRouteTable checks on the API server the objects of
// a progressive canary, as Flagger writes them: the Upstreams of the
// primary and canary Services (settings of spec.upstreamRef's Upstream
// copied, its discovery fields not), and the RouteTable weighing them.
func TestRouter_UpstreamsAndRouteTable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	config := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"connectionConfig":   map[string]any{"maxRequestsPerConnection": int64(10)},
		"loadBalancerConfig": map[string]any{"roundRobin": map[string]any{}},
		"kube":               map[string]any{"serviceName": "template", "serviceNamespace": "gloo-system", "servicePort": int64(1)},
	}}}
	config.SetGroupVersionKind(gloo.UpstreamGVK)
	config.SetName("settings")
	config.SetNamespace(c.Namespace)
	g.Expect(env.Client.Create(ctx, config)).To(Succeed())
	c.Spec.UpstreamRef = &sluicev1beta1.ObjectReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "settings"}

	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
	ns := c.Namespace
	canaryUp := get(g, gloo.UpstreamGVK, ns, ns+"-app-canaryupstream-9898")
	g.Expect(canaryUp.Object["spec"]).To(Equal(map[string]any{
		"connectionConfig":   map[string]any{"maxRequestsPerConnection": int64(10)},
		"loadBalancerConfig": map[string]any{"roundRobin": map[string]any{}},
		"kube":               map[string]any{"serviceName": "app-canary", "serviceNamespace": ns, "servicePort": int64(9898), "selector": map[string]any{"app": "app"}},
	}))
	g.Expect(router.ControlledBy(canaryUp, c.UID)).To(BeTrue())
	primaryUp := get(g, gloo.UpstreamGVK, ns, ns+"-app-primaryupstream-9898")
	g.Expect(primaryUp.Object["spec"]).To(HaveKeyWithValue("kube", HaveKeyWithValue("serviceName", "app-primary")))

	table := get(g, gloo.RouteTableGVK, ns, "app")
	g.Expect(table.Object["spec"]).To(Equal(map[string]any{"routes": []any{map[string]any{
		"inheritablePathMatchers": true,
		"routeAction": map[string]any{"multi": map[string]any{"destinations": []any{
			dest(ns, ns+"-app-primaryupstream-9898", 80), dest(ns, ns+"-app-canaryupstream-9898", 20),
		}}},
	}}}))
	rv := table.GetResourceVersion()
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get(g, gloo.RouteTableGVK, ns, "app").GetResourceVersion()).To(Equal(rv), "an idle reconcile wrote")

	c.Spec.UpstreamRef.Name = "nope"
	g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("the Upstream " + ns + "/nope of spec.upstreamRef does not exist")))
}

// TestRenderRouteTable_ABTesting checks the A/B routes: the analysis'
// header and method matches first, to the weighted Upstreams, then every
// other request to the primary; and errors for what Gloo cannot match.
func TestRenderRouteTable_ABTesting(t *testing.T) {
	g := NewWithT(t)
	c := newCanary("web")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
		{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}, "cookie": {Regex: "canary=always"}}},
		{Method: &sluicev1beta1.StringMatch{Exact: "POST"}},
	}}
	spec, err := gloo.RenderRouteTable(c, router.Routes{CanaryWeight: 100})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec).To(Equal(map[string]any{"routes": []any{
		map[string]any{
			"inheritablePathMatchers": true,
			"matchers": []any{
				map[string]any{"headers": []any{
					map[string]any{"name": "cookie", "value": "canary=always", "regex": true},
					map[string]any{"name": "x-canary", "value": "insider"},
				}},
				map[string]any{"methods": []any{"POST"}},
			},
			"routeAction": map[string]any{"multi": map[string]any{"destinations": []any{
				dest("web", "web-app-primaryupstream-9898", 0), dest("web", "web-app-canaryupstream-9898", 100),
			}}},
		},
		map[string]any{
			"inheritablePathMatchers": true,
			"routeAction":             map[string]any{"multi": map[string]any{"destinations": []any{dest("web", "web-app-primaryupstream-9898", 100)}}},
		},
	}}))

	for _, m := range []sluicev1beta1.HTTPMatchRequest{
		{URI: &sluicev1beta1.StringMatch{Prefix: "/beta"}},
		{Headers: map[string]sluicev1beta1.StringMatch{"x": {Prefix: "a"}}},
	} {
		c.Spec.Analysis.Match = []sluicev1beta1.HTTPMatchRequest{m}
		_, err := gloo.RenderRouteTable(c, router.Routes{PrimaryWeight: 100})
		g.Expect(err).To(MatchError(ContainSubstring("spec.analysis.match[0]")), "%+v", m)
	}
}
