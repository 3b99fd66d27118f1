package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	traefikrouter "github.com/sluice-cd/sluice/pkg/router/traefik"
)

// Each builtin measures the primary during a soak: the istio and
// kubernetes queries through {{ target }}, the Traefik and Gateway API
// queries through the primary's backend; a template sees the primary as
// its target and the apex Service as its service.
func TestOnPrimary(t *testing.T) {
	c := &sluicev1beta1.Canary{}
	c.Namespace, c.Name = "shop", "web"
	c.Spec.TargetRef = sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	c.Spec.Service = sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)}
	render := func(pc *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric) string {
		apex, _, _ := pc.ServiceNames()
		q, err := metrics.Render(m.Query, metrics.Model{Name: pc.Name, Namespace: pc.Namespace, Target: pc.Spec.TargetRef.Name,
			Service: apex, Route: apex, Interval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	for _, tc := range []struct {
		provider string
		want     string
	}{
		{sluicev1beta1.ProviderKubernetes, `kubernetes_pod_name=~"web-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`},
		{"istio", `destination_workload=~"web-primary"`},
		{"traefik", `service=~"shop-web-primary-.+@kubernetescrd"`},
		{"gatewayapi", `shop-web-primary-.*@kubernetesgateway`},
		{"gatewayapi:v1", `shop-web-primary-.*@kubernetesgateway`},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			g := NewWithT(t)
			for _, name := range []string{sluicev1beta1.MetricRequestSuccessRate, sluicev1beta1.MetricRequestDuration} {
				pc, pm := onPrimary(builtins(), c, tc.provider, sluicev1beta1.CanaryMetric{Name: name})
				q := render(pc, pm)
				g.Expect(q).To(ContainSubstring(tc.want), name)
				g.Expect(q).NotTo(ContainSubstring("canary"), name)
			}
		})
	}

	g := NewWithT(t)
	// A template or an inline query: the primary is {{ target }}, the apex {{ service }}.
	m := sluicev1beta1.CanaryMetric{Name: "errors", Query: `errors{workload="{{ target }}",svc="{{ service }}"}`}
	pc, pm := onPrimary(builtins(), c, "istio", m)
	g.Expect(render(pc, pm)).To(Equal(`errors{workload="web-primary",svc="web"}`))
	// A Canary whose Service is named apart keeps that apex.
	named := c.DeepCopy()
	named.Spec.Service.Name = "shop-front"
	pc, pm = onPrimary(builtins(), named, "traefik", sluicev1beta1.CanaryMetric{Name: sluicev1beta1.MetricRequestSuccessRate})
	g.Expect(render(pc, pm)).To(ContainSubstring(`service=~"shop-shop-front-primary-.+@kubernetescrd"`))
	// The Canary is not changed.
	g.Expect(c.Spec.TargetRef.Name).To(Equal("web"))
	g.Expect(c.Spec.Service.Name).To(BeEmpty())
	// A provider without builtins is left to the checker, which says so.
	_, pm = onPrimary(builtins(), c, "contour", sluicev1beta1.CanaryMetric{Name: sluicev1beta1.MetricRequestSuccessRate})
	g.Expect(pm.Query).To(BeEmpty())
}

// builtins are the real routers' builtin metrics.
func builtins() *router.Registry {
	r := router.NewRegistry()
	kubernetesrouter.Register(r)
	istiorouter.Register(r)
	traefikrouter.Register(r)
	gatewayapirouter.Register(r)
	return r
}
