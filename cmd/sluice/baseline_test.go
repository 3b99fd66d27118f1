package main

import (
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// router.BaselineProviders, named in the UnsupportedFeature message of a
// Canary asking for a baseline elsewhere, lists exactly the registered
// providers that split three ways (aliases such as gatewayapi:v1 under
// their base name).
func TestNewRouters_BaselineProvidersMatchTheRegistry(t *testing.T) {
	g := NewWithT(t)
	routers, err := newRouters(Options{DefaultProvider: sluicev1beta1.ProviderKubernetes})
	g.Expect(err).NotTo(HaveOccurred())
	var got []string
	for _, name := range routers.Names() {
		rt, err := routers.New(name, nil)
		g.Expect(err).NotTo(HaveOccurred())
		if _, ok := rt.(router.BaselineRouter); ok {
			base, _, _ := strings.Cut(name, ":")
			if !slices.Contains(got, base) {
				got = append(got, base)
			}
		}
	}
	g.Expect(got).To(Equal(router.BaselineProviders))
}
