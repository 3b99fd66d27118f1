package traefik_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// sample is a Canary of config/samples and its file's base name.
type sample struct {
	base   string
	canary *sluicev1beta1.Canary
}

// samples reads the Canaries of config/samples, with a fixed UID.
func samples(t *testing.T) []sample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	var out []sample
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &meta); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if meta.Kind != "Canary" {
			continue
		}
		c := &sluicev1beta1.Canary{}
		if err := yaml.Unmarshal(data, c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.UID = "00000000-0000-0000-0000-000000000001"
		out = append(out, sample{base: strings.TrimSuffix(filepath.Base(f), ".yaml"), canary: c})
	}
	return out
}

// variant is a way to render a sample: its golden file suffix and options.
type variant struct {
	suffix string
	opts   []traefik.Option
}

var variants = []variant{{"traefikservice", nil}, {"traefikservice-nativelb", []traefik.Option{traefik.WithNativeLB()}}}

// TestGolden renders the TraefikService of every sample Canary at canary
// weight 10, with and without nativeLB, and compares it with the golden files.
func TestGolden(t *testing.T) {
	for _, s := range samples(t) {
		for _, v := range variants {
			name := s.base + "-" + v.suffix
			t.Run(name, func(t *testing.T) {
				g := NewWithT(t)
				obj, err := traefik.Render(s.canary, router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, nil, v.opts...)
				g.Expect(err).NotTo(HaveOccurred())
				got, err := yaml.Marshal(obj.Object)
				g.Expect(err).NotTo(HaveOccurred())
				path := filepath.Join("testdata", "golden", name+".yaml")
				if *update {
					g.Expect(os.WriteFile(path, got, 0o644)).To(Succeed())
				}
				want, err := os.ReadFile(path)
				g.Expect(err).NotTo(HaveOccurred(), "run go test with -update to write the golden files")
				g.Expect(string(got)).To(Equal(string(want)))
			})
		}
	}
}

// rendered returns the objects of the golden tests.
func rendered(t *testing.T) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, s := range samples(t) {
		for _, v := range variants {
			obj, err := traefik.Render(s.canary, router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, nil, v.opts...)
			if err != nil {
				t.Fatal(err)
			}
			out[s.base+"-"+v.suffix] = obj
		}
	}
	return out
}
