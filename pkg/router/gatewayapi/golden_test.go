package gatewayapi_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// samples reads the Canaries of config/samples.
func samples(t *testing.T) map[string]*sluicev1beta1.Canary {
	t.Helper()
	files, err := filepath.Glob("../../../config/samples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	out := map[string]*sluicev1beta1.Canary{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil || meta.Kind != "Canary" {
				continue
			}
			c := &sluicev1beta1.Canary{}
			if err := yaml.UnmarshalStrict(doc, c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c.Spec.Provider = gatewayapi.Name
			c.UID = "00000000-0000-0000-0000-000000000001"
			out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = c
		}
	}
	return out
}

// TestGolden renders the HTTPRoute of every sample and compares it with
// testdata/golden (go test -update rewrites them).
func TestGolden(t *testing.T) {
	for base, c := range samples(t) {
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
