package v1beta1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// strict makes the API server reject unknown fields, as kubectl does by default.
var strict = client.FieldValidation("Strict")

func TestCRDs_Installed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	want := map[string][]string{
		"canaries.sluice.dev":        {"Status", "Weight", "FailedChecks", "Interval", "Mirror", "StepWeight", "StepWeights", "MaxWeight", "LastTransitionTime"},
		"metrictemplates.sluice.dev": {"Provider"},
		"alertproviders.sluice.dev":  {"Type"},
		"pipelines.sluice.dev":       {"Ready", "Age"},
	}
	for name, columns := range want {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed(), name)
		g.Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped), name)
		g.Expect(crd.Spec.Names.ShortNames).NotTo(BeEmpty(), name)
		g.Expect(crd.Spec.Versions).To(HaveLen(1))
		v := crd.Spec.Versions[0]
		g.Expect(v.Name).To(Equal("v1beta1"))
		g.Expect(v.Subresources.Status).NotTo(BeNil(), name)
		var got []string
		for _, c := range v.AdditionalPrinterColumns {
			got = append(got, c.Name)
		}
		g.Expect(got).To(ContainElements(columns), name)
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		g.Expect(established).To(BeTrue(), name+" is not established")
	}
}

// TestSamples_Accepted creates every example of config/samples.
func TestSamples_Accepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("expected at least 7 samples, found %d", len(files))
	}
	ns := newNamespace(t)
	kinds := map[string]int{}
	for _, f := range files {
		for _, u := range readObjects(t, f) {
			t.Run(filepath.Base(f)+"/"+u.GetName(), func(t *testing.T) {
				g := NewWithT(t)
				u.SetNamespace(ns)
				g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed())
				kinds[u.GetKind()]++
			})
		}
	}
	g := NewWithT(t)
	g.Expect(kinds).To(HaveKey("Canary"))
	g.Expect(kinds).To(HaveKey("MetricTemplate"))
	g.Expect(kinds).To(HaveKey("AlertProvider"))
}

// TestFlaggerManifests_AcceptedUnchanged takes manifests written for
// flagger.app/v1beta1, changes only their apiVersion, and checks that the API
// server accepts them and stores every field as given (nothing pruned).
func TestFlaggerManifests_AcceptedUnchanged(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "flagger", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Flagger manifests in testdata/flagger: %v", err)
	}
	ns := newNamespace(t)
	for _, f := range files {
		for _, u := range readObjects(t, f) {
			t.Run(filepath.Base(f)+"/"+u.GetName(), func(t *testing.T) {
				g := NewWithT(t)
				g.Expect(u.GetAPIVersion()).To(Equal("flagger.app/v1beta1"))
				u.SetAPIVersion("sluice.dev/v1beta1")
				u.SetNamespace(ns)
				sent := normalize(t, u.Object["spec"])
				g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed())

				stored := &unstructured.Unstructured{}
				stored.SetGroupVersionKind(u.GroupVersionKind())
				g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), stored)).To(Succeed())
				// The API server may add schema defaults (gatewayRefs group and
				// kind, as Flagger's schema does too) but must keep every field
				// and value of the manifest.
				g.Expect(missingIn(normalize(t, stored.Object["spec"]), sent, "spec")).To(BeEmpty())
			})
		}
	}
}

// readObjects reads the YAML documents of a file as unstructured objects.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---") {
		m := map[string]any{}
		if err := utilyaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// normalize turns a value into its generic JSON form so that numbers compare
// equal whatever their Go type.
func normalize(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// missingIn lists the paths of want that got lacks or holds with another value;
// got may have more map keys (defaults), never fewer.
func missingIn(got, want any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		gm, ok := got.(map[string]any)
		if !ok {
			return []string{path + ": not an object"}
		}
		var out []string
		for k, v := range w {
			gv, ok := gm[k]
			if !ok {
				out = append(out, path+"."+k+": missing")
				continue
			}
			out = append(out, missingIn(gv, v, path+"."+k)...)
		}
		return out
	case []any:
		gl, ok := got.([]any)
		if !ok || len(gl) != len(w) {
			return []string{path + ": list differs"}
		}
		var out []string
		for i := range w {
			out = append(out, missingIn(gl[i], w[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if !reflect.DeepEqual(got, want) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
}
