package traefik_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

// weightedSchema reads the schema of spec.weighted from Traefik's CRD.
func weightedSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.Root, "bin", "crds", "traefik", "traefik-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal([]byte(doc), crd); err != nil || crd.Spec.Names.Kind != traefik.GVK.Kind || crd.Spec.Group != traefik.GVK.Group {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Name == traefik.GVK.Version {
				return v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["weighted"]
			}
		}
	}
	t.Fatal("the TraefikService CRD is not in bin/crds/traefik")
	return apiextensionsv1.JSONSchemaProps{}
}

// TestRender_ProducesNoUnknownWeightedField checks every field Sluice
// writes under spec against Traefik's CRD schema (the API server would
// prune an unknown field silently).
func TestRender_ProducesNoUnknownWeightedField(t *testing.T) {
	weighted := weightedSchema(t)
	items := weighted.Properties["services"].Items.Schema
	for name, obj := range rendered(t) {
		g := NewWithT(t)
		spec := obj.Object["spec"].(map[string]any)
		g.Expect(spec).To(HaveLen(1), name)
		g.Expect(spec).To(HaveKey("weighted"), name)
		w := spec["weighted"].(map[string]any)
		for k := range w {
			g.Expect(weighted.Properties).To(HaveKey(k), "%s: spec.weighted.%s is not in the CRD", name, k)
		}
		for _, s := range w["services"].([]any) {
			for k := range s.(map[string]any) {
				g.Expect(items.Properties).To(HaveKey(k), "%s: spec.weighted.services[].%s is not in the CRD", name, k)
			}
		}
	}
}

func canary() *sluicev1beta1.Canary {
	c := newCanary("ns")
	c.UID = "uid-1"
	return c
}

func services(u *unstructured.Unstructured) []any {
	s, _, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
	return s
}

func TestRender_NewObject(t *testing.T) {
	g := NewWithT(t)
	c := canary()
	c.Spec.Service.Port = 9898
	c.Spec.Service.Apex = &sluicev1beta1.CustomMetadata{Labels: map[string]string{"team": "web"}, Annotations: map[string]string{"a": "b"}}
	u, err := traefik.Render(c, router.Routes{PrimaryWeight: 100}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.GetName()).To(Equal("app"))
	g.Expect(u.GetNamespace()).To(Equal("ns"))
	g.Expect(u.GetLabels()).To(Equal(map[string]string{"team": "web"}))
	g.Expect(u.GetAnnotations()).To(HaveKeyWithValue("a", "b"))
	g.Expect(u.GetAnnotations()).To(HaveKey(traefik.HashAnnotation))
	g.Expect(u.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
	g.Expect(u.GetOwnerReferences()).To(HaveLen(1))
	g.Expect(u.GetOwnerReferences()[0].UID).To(BeEquivalentTo("uid-1"))
	g.Expect(services(u)).To(Equal([]any{
		map[string]any{"name": "app-primary", "port": int64(9898), "weight": int64(100)},
		map[string]any{"name": "app-canary", "port": int64(9898), "weight": int64(0)},
	}))
}

// TestRender_KeepsUserEntries checks that the entries users added stay in
// place, that the fields users put on the Sluice entries stay, and that an
// object Sluice did not create gets no owner reference but a record of its spec.
func TestRender_KeepsUserEntries(t *testing.T) {
	g := NewWithT(t)
	live := traefikService("app", []any{
		map[string]any{"name": "other", "port": int64(8080), "weight": int64(5)},
		map[string]any{"name": "app-canary", "port": "http", "weight": int64(3), "middlewares": []any{map[string]any{"name": "auth"}}},
		map[string]any{"name": "app-primary", "namespace": "elsewhere", "port": int64(80), "weight": int64(1)},
		map[string]any{"name": "app-canary", "port": int64(80), "weight": int64(7)},
	})
	live.SetNamespace("ns")
	u, err := traefik.Render(canary(), router.Routes{PrimaryWeight: 60, CanaryWeight: 40}, live, traefik.WithNativeLB())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(services(u)).To(Equal([]any{
		map[string]any{"name": "other", "port": int64(8080), "weight": int64(5)},
		map[string]any{"name": "app-canary", "port": int64(80), "weight": int64(40), "nativeLB": true, "middlewares": []any{map[string]any{"name": "auth"}}},
		map[string]any{"name": "app-primary", "namespace": "elsewhere", "port": int64(80), "weight": int64(1)},
		map[string]any{"name": "app-primary", "port": int64(80), "weight": int64(60), "nativeLB": true},
	}))
	g.Expect(u.GetOwnerReferences()).To(BeEmpty())
	g.Expect(u.GetAnnotations()).To(HaveKeyWithValue(router.OriginalAnnotation, ContainSubstring(`"name":"other"`)))
	// The live object is not changed.
	g.Expect(services(live)).To(HaveLen(4))
}

// TestRender_KeepsOwnership checks that an object Sluice created keeps its
// owner reference and records no original spec.
func TestRender_KeepsOwnership(t *testing.T) {
	g := NewWithT(t)
	c := canary()
	live := traefikService("app", nil)
	live.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "sluice.dev/v1beta1", Kind: "Canary", Name: "app", UID: c.UID}})
	u, err := traefik.Render(c, router.Routes{PrimaryWeight: 100}, live)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.GetOwnerReferences()).To(HaveLen(1))
	g.Expect(u.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
}
