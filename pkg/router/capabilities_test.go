package router_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

type matching struct{ weighted }

func (matching) SupportsMatch() {}

type revisions struct{ weighted }

func (revisions) WithoutBlueGreen() {}

type described struct{ plain }

func (described) RoutingObjects() string { return "nothing at all" }

func TestCapabilities(t *testing.T) {
	g := NewWithT(t)
	g.Expect(router.Capabilities(plain{})).To(BeEmpty())
	g.Expect(router.Strategies(plain{})).To(Equal([]sluicev1beta1.DeploymentStrategy{sluicev1beta1.StrategyBlueGreen}))
	g.Expect(router.Capabilities(matching{})).To(Equal([]router.Capability{router.CapabilityWeights, router.CapabilityMatch}))
	g.Expect(router.Strategies(matching{})).To(Equal([]sluicev1beta1.DeploymentStrategy{
		sluicev1beta1.StrategyCanary, sluicev1beta1.StrategyBlueGreen, sluicev1beta1.StrategyABTesting}))
	g.Expect(router.Supported(weighted{})).To(Equal("strategies canary, blue-green; capabilities weights"))
	g.Expect(router.Supported(plain{})).To(Equal("strategies blue-green; capabilities none"))
	g.Expect(router.Strategies(revisions{})).To(Equal([]sluicev1beta1.DeploymentStrategy{sluicev1beta1.StrategyCanary}),
		"a router without blue/green does not list it")
}

func TestRegistry_Providers(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	r.Register(func(client.Client) router.Router { return described{} }, "plain")
	r.Register(func(client.Client) router.Router { return matching{} }, "b", "b:v1")
	r.Register(func(client.Client) router.Router { return weighted{} }, "a")
	g.Expect(r.Providers()).To(Equal([]router.Provider{
		{Names: []string{"a"}, Capabilities: []router.Capability{router.CapabilityWeights},
			Strategies: []sluicev1beta1.DeploymentStrategy{sluicev1beta1.StrategyCanary, sluicev1beta1.StrategyBlueGreen}},
		{Names: []string{"b", "b:v1"}, Capabilities: []router.Capability{router.CapabilityWeights, router.CapabilityMatch},
			Strategies: []sluicev1beta1.DeploymentStrategy{sluicev1beta1.StrategyCanary, sluicev1beta1.StrategyBlueGreen, sluicev1beta1.StrategyABTesting}},
		{Names: []string{"plain"}, Objects: "nothing at all",
			Strategies: []sluicev1beta1.DeploymentStrategy{sluicev1beta1.StrategyBlueGreen}},
	}))
}

// An unsupported combination names what the provider supports and, through
// the registry, the providers that can do it.
func TestRegistry_UnsupportedNamesTheSupportedList(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	r.Register(func(client.Client) router.Router { return weighted{} }, "traefik")
	r.Register(func(client.Client) router.Router { return matching{} }, "nginx", "other")
	match := []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x": {Exact: "y"}}}}
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: match, Mirror: true}}}
	rt, err := r.New("traefik", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Unsupported(rt, c, "traefik")).To(Equal([]string{
		"provider traefik cannot route by request match: remove analysis.match or use a provider with A/B testing (provider traefik supports strategies canary, blue-green; capabilities weights; providers with match: nginx, other)",
		"provider traefik cannot mirror traffic: remove analysis.mirror (provider traefik supports strategies canary, blue-green; capabilities weights)",
	}))
	// Without the registry the message still names what the provider supports.
	g.Expect(router.Unsupported(rt, c, "traefik")[0]).To(HaveSuffix("(provider traefik supports strategies canary, blue-green; capabilities weights)"))
}

type checked struct{ weighted }

func (checked) CheckSpec(*sluicev1beta1.Canary) []string {
	return []string{"spec.ingressRef is missing"}
}

func TestUnsupported_SpecChecker(t *testing.T) {
	g := NewWithT(t)
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &sluicev1beta1.CanaryAnalysis{StepWeight: 10}}}
	g.Expect(router.Unsupported(checked{}, c, "p")).To(Equal([]string{"spec.ingressRef is missing"}))
}

func TestRegistry_RegisterKindsOnce(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	r.RegisterKinds(router.Kind(router.IngressGVK))
	r.RegisterKinds(router.Kind(router.IngressGVK))
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(router.IngressGVK, meta.RESTScopeNamespace)
	g.Expect(r.InstalledKinds(mapper, runtime.NewScheme())).To(HaveLen(1))
}
