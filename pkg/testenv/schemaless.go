package testenv

import (
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// WithCRDs installs these CRDs too.
func WithCRDs(crds ...*apiextensionsv1.CustomResourceDefinition) Option {
	return func(s *settings) {
		s.env.CRDs = append(s.env.CRDs, crds...)
	}
}

// SchemalessCRD is a namespaced CRD that serves one kind and keeps any
// spec (x-kubernetes-preserve-unknown-fields): the last resort for a
// provider whose CRDs no Go module on the proxy contains (Kuma, Gloo). It
// checks that a router addresses the right group, version, kind and
// resource, and round-trips its objects; it cannot check their fields, so
// the routers' tests compare the rendered specs with the provider's
// documented examples. plural is the resource name (lower-case).
func SchemalessCRD(gvk schema.GroupVersionKind, plural string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + gvk.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gvk.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Kind: gvk.Kind, ListKind: gvk.Kind + "List", Plural: plural, Singular: strings.ToLower(gvk.Kind),
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: gvk.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
					},
				}},
			}},
		},
	}
}
