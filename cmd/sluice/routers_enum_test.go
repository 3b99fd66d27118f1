package main

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/router"
)

// TestNewRouters_EveryNameTheCRDAccepts: every provider the manager
// registers a router for is in the Canary CRD's spec.provider enum, so no
// router is unreachable. The enum keeps Flagger's whole list on purpose (a
// Flagger manifest is accepted and Stalled with the supported list), so it
// may hold names with no router; the batch-2 routers (linkerd, smi, gloo,
// kuma, apisix) must be registered.
func TestNewRouters_EveryNameTheCRDAccepts(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "sluice.dev_canaries.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
	var accepted []string
	for _, v := range crd.Spec.Versions {
		p := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["provider"]
		g.Expect(p.Enum).NotTo(BeEmpty(), "version %s: spec.provider is an enum", v.Name)
		for _, e := range p.Enum {
			var s string
			g.Expect(yaml.Unmarshal(e.Raw, &s)).To(Succeed())
			accepted = append(accepted, s)
		}
	}
	routers, err := newRouters(Options{DefaultProvider: "kubernetes"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(uniq(accepted)).To(ContainElements(routers.Names()), "a registered router's name is missing from the CRD's spec.provider enum")
	g.Expect(routers.Names()).To(ContainElements("linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "gloo", "kuma", "apisix"))
	for _, name := range []string{"linkerd", "gloo", "kuma", "apisix", "smi:v1alpha2"} {
		rt, err := routers.New(name, nil)
		g.Expect(err).NotTo(HaveOccurred())
		_, weighted := rt.(router.WeightedRouter)
		g.Expect(weighted).To(BeTrue(), "%s splits traffic by weight", name)
	}
}
