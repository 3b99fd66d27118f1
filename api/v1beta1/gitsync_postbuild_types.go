package v1beta1

// GitSyncSubstituteAnnotation set to GitSyncSubstituteDisabled on an object in
// Git leaves it out of the post-build substitution (Flux's
// kustomize.toolkit.fluxcd.io/substitute: disabled).
const GitSyncSubstituteAnnotation = "gitsync.sluice.dev/substitute"

// GitSyncSubstituteDisabled is the value of GitSyncSubstituteAnnotation that
// opts an object out of the substitution.
const GitSyncSubstituteDisabled = "disabled"

// GitSyncPostBuild substitutes variables in the built objects before they are
// applied, as Flux's Kustomization spec.postBuild: ${var}, ${var:=default}
// and ${var:-default}; $${var} stays a literal ${var}.
//
// +kubebuilder:validation:XValidation:rule="has(self.substitute) || has(self.substituteFrom)",message="spec.postBuild needs substitute or substituteFrom (or remove spec.postBuild)"
type GitSyncPostBuild struct {
	// substitute maps variable names to their values. It wins over
	// substituteFrom.
	// +kubebuilder:validation:MaxProperties=256
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[_a-zA-Z][_a-zA-Z0-9]*$'))",message="spec.postBuild.substitute keys must be variable names: a letter or _, then letters, digits or _"
	// +optional
	Substitute map[string]string `json:"substitute,omitempty"`

	// substituteFrom lists ConfigMaps and Secrets in the GitSync's namespace
	// whose keys are variables. A later entry overrides an earlier one. Keys
	// that are not variable names are ignored.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	SubstituteFrom []GitSyncSubstituteReference `json:"substituteFrom,omitempty"`
}

// GitSyncSubstituteReference names a ConfigMap or a Secret of variables.
type GitSyncSubstituteReference struct {
	// kind of the object: ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	// +required
	Kind string `json:"kind"`

	// name of the ConfigMap or Secret, in the GitSync's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// optional set to true skips a missing object instead of failing the sync.
	// +optional
	Optional bool `json:"optional,omitempty"`
}
