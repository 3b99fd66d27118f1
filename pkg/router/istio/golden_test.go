package istio_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/istio"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden renders the objects of every sample and compares them with
// testdata/golden; go test -update rewrites the files.
func TestGolden(t *testing.T) {
	names := []string{"virtualservice", "destinationrule-primary", "destinationrule-canary"}
	for base, c := range conformance.Samples(t) {
		c.Spec.Provider = istio.Name
		variants := map[string]router.Routes{"": {PrimaryWeight: 90, CanaryWeight: 10}}
		if a := c.Spec.Analysis; a != nil && len(a.Match) > 0 {
			variants["-weight-0"] = router.Routes{PrimaryWeight: 100}
			variants["-weight-100"] = router.Routes{CanaryWeight: 100}
		}
		if a := c.Spec.Analysis; a != nil && a.Mirror {
			variants["-mirrored"] = router.Routes{PrimaryWeight: 100, Mirrored: true}
		}
		if a := c.Spec.Analysis; a != nil && a.SessionAffinity != nil {
			// Cookies as the engine would have them during a release.
			c.Status.SessionAffinityCookie = a.SessionAffinity.CookieName + "=current"
			c.Status.PreviousSessionAffinityCookie = a.SessionAffinity.CookieName + "=previous"
			if a.SessionAffinity.PrimaryCookieName != "" {
				c.Status.PrimarySessionAffinityCookie = a.SessionAffinity.PrimaryCookieName + "=primary"
			}
		}
		for suffix, routes := range variants {
			t.Run(base+suffix, func(t *testing.T) {
				g := NewWithT(t)
				objs, err := istio.Render(c, routes, nil)
				g.Expect(err).NotTo(HaveOccurred())
				for i, o := range objs {
					if i > 0 && suffix != "" {
						continue // DestinationRules do not depend on the routes
					}
					got, err := yaml.Marshal(o.Object)
					g.Expect(err).NotTo(HaveOccurred())
					file := filepath.Join("testdata", "golden", base+"-"+names[i]+suffix+".yaml")
					if *update {
						g.Expect(os.WriteFile(file, got, 0o600)).To(Succeed())
						continue
					}
					want, err := os.ReadFile(file)
					g.Expect(err).NotTo(HaveOccurred(), "run go test -update to write %s", file)
					g.Expect(string(got)).To(Equal(string(want)), file)
				}
			})
		}
	}
}
