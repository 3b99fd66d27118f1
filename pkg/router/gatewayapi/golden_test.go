package gatewayapi_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden renders the HTTPRoute of every sample and compares it with
// testdata/golden (go test -update rewrites them).
func TestGolden(t *testing.T) {
	for base, c := range conformance.Samples(t) {
		c.Spec.Provider = gatewayapi.Name
		c.UID = "00000000-0000-0000-0000-000000000001"
		variants := map[string]router.Routes{"httproute": {PrimaryWeight: 90, CanaryWeight: 10}}
		if a := c.Spec.Analysis; a != nil {
			if len(a.Match) > 0 {
				variants["httproute-canary0"] = router.Routes{PrimaryWeight: 100}
				variants["httproute-canary100"] = router.Routes{CanaryWeight: 100}
			}
			if a.Mirror {
				variants["httproute-mirrored"] = router.Routes{PrimaryWeight: 100, Mirrored: true}
			}
			if a.SessionAffinity != nil {
				// Cookies as the engine sets them during a release.
				c.Status.SessionAffinityCookie = a.SessionAffinity.CookieName + "=current"
				c.Status.PreviousSessionAffinityCookie = a.SessionAffinity.CookieName + "=previous"
				if a.SessionAffinity.PrimaryCookieName != "" {
					c.Status.PrimarySessionAffinityCookie = a.SessionAffinity.PrimaryCookieName + "=primary"
				}
				variants["httproute-canary0"] = router.Routes{PrimaryWeight: 100}
			}
		}
		for name, routes := range variants {
			t.Run(base+"-"+name, func(t *testing.T) {
				g := NewWithT(t)
				obj, err := gatewayapi.Build(c, routes, nil)
				g.Expect(err).NotTo(HaveOccurred())
				got, err := yaml.Marshal(obj.Object)
				g.Expect(err).NotTo(HaveOccurred())
				file := filepath.Join("testdata", "golden", base+"-"+name+".yaml")
				if *update {
					g.Expect(os.WriteFile(file, got, 0o644)).To(Succeed())
				}
				want, err := os.ReadFile(file)
				g.Expect(err).NotTo(HaveOccurred(), "run go test -update to write %s", file)
				g.Expect(string(got)).To(Equal(string(want)))
			})
		}
	}
}
