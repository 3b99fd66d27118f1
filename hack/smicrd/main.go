// Command smicrd converts the TrafficSplit CRD of the SMI SDK
// (github.com/servicemeshinterface/smi-sdk-go crds/split.yaml, written as
// apiextensions.k8s.io/v1beta1, which API servers no longer serve) to
// apiextensions.k8s.io/v1 for the tests of the SMI router, read on stdin and
// written on stdout. The conversion is the API server's own
// (v1beta1 to internal to v1); the single v1beta1 schema becomes each
// version's schema. The SDK's CRD serves v1alpha4 only, while the meshes
// Sluice drives through SMI serve older versions (linkerd-smi: v1alpha1 and
// v1alpha2; Open Service Mesh: v1alpha2 and up), so every listed version is
// marked served, and the storage version is left as the SDK has it.
package main

import (
	"fmt"
	"io"
	"os"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "smicrd:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(io.LimitReader(in, 1<<20))
	if err != nil {
		return fmt.Errorf("failed to read the CRD: %w", err)
	}
	scheme := runtime.NewScheme()
	apiextensionsinstall.Install(scheme)
	var old apiextensionsv1beta1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &old); err != nil {
		return fmt.Errorf("the input is not one apiextensions.k8s.io/v1beta1 CRD: %w", err)
	}
	scheme.Default(&old)
	var internal apiextensions.CustomResourceDefinition
	if err := scheme.Convert(&old, &internal, nil); err != nil {
		return fmt.Errorf("failed to convert the CRD: %w", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := scheme.Convert(&internal, &crd, nil); err != nil {
		return fmt.Errorf("failed to convert the CRD: %w", err)
	}
	crd.APIVersion, crd.Kind = apiextensionsv1.SchemeGroupVersion.String(), "CustomResourceDefinition"
	// v1 wants a structural schema: an object at the root, and no pruning
	// opt-out (the schema lists every field, so nothing is lost).
	crd.Spec.PreserveUnknownFields = false
	for i := range crd.Spec.Versions {
		crd.Spec.Versions[i].Served = true
		if s := crd.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil && s.OpenAPIV3Schema.Type == "" {
			s.OpenAPIV3Schema.Type = "object"
		}
	}
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	outData, err := yaml.Marshal(&crd)
	if err != nil {
		return fmt.Errorf("failed to write the CRD: %w", err)
	}
	_, err = out.Write(outData)
	return err
}
