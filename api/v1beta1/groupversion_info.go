// Package v1beta1 contains the Sluice API: Canary, MetricTemplate and
// AlertProvider. Field names and semantics are those of Flagger's
// flagger.app/v1beta1 (a superset), so a Flagger manifest migrates by changing
// its apiVersion to sluice.dev/v1beta1.
//
// +kubebuilder:object:generate=true
// +groupName=sluice.dev
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Sluice API.
	GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1beta1"}

	// SchemeBuilder adds the Sluice types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion} //nolint:staticcheck // SA1019: the kubebuilder registration every types file's init uses; apimachinery's SchemeBuilder would change them all.

	// AddToScheme adds the Sluice types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
