package v1beta1

// GitSyncDependency names a GitSync that must be ready before this one
// fetches, applies or prunes, as Flux's Kustomization spec.dependsOn.
type GitSyncDependency struct {
	// name of the GitSync depended on.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// namespace of the GitSync depended on; defaults to this GitSync's.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// readyExpr is a CEL expression over self (this GitSync) and dep (the
	// GitSync depended on), both as objects, that tells when the dependency
	// is ready, e.g. "dep.status.lastAppliedRevision.endsWith(self.metadata.annotations['rev'])".
	// When set it replaces the built-in check (Ready=True at the current
	// generation, and the last attempted revision applied), as in Flux.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	ReadyExpr string `json:"readyExpr,omitempty"`
}
