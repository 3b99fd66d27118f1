package main

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestNewMetricProviders_EveryTypeTheCRDAccepts: every provider type the
// MetricTemplate CRD admits has a client in the manager, so that no
// accepted template ends its checks in UnsupportedProvider; and the
// manager registers no type the CRD would refuse.
func TestNewMetricProviders_EveryTypeTheCRDAccepts(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "sluice.dev_metrictemplates.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(yaml.Unmarshal(raw, crd)).To(Succeed())
	var accepted []string
	for _, v := range crd.Spec.Versions {
		typ := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["provider"].Properties["type"]
		g.Expect(typ.Enum).NotTo(BeEmpty(), "version %s: spec.provider.type is an enum", v.Name)
		for _, e := range typ.Enum {
			var s string
			g.Expect(yaml.Unmarshal(e.Raw, &s)).To(Succeed())
			accepted = append(accepted, s)
		}
	}
	registered := newMetricProviders(nil).Types()
	g.Expect(registered).To(ConsistOf(uniq(accepted)), "the CRD's spec.provider.type enum and cmd/sluice/metricproviders.go differ")
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
