package v1beta1

// GitSyncPatch is a kustomize patch applied to the built objects, as an
// entry of Flux's Kustomization spec.patches: a strategic merge patch or a
// JSON 6902 patch (a list of operations), in YAML or JSON.
//
// +kubebuilder:validation:XValidation:rule="has(self.target) || !self.patch.matches('^(\\\\s*#[^\\\\n]*\\\\n)*\\\\s*(\\\\[|-(\\\\s|$))')",message="a JSON 6902 patch (a list of operations) needs a target naming the objects it patches, e.g. target: {kind: Deployment, name: web}"
type GitSyncPatch struct {
	// patch is the patch text: a strategic merge patch (a partial object
	// with apiVersion, kind and metadata.name) or a JSON 6902 patch (a list
	// of {op, path, value}).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	// +kubebuilder:validation:XValidation:rule="self.matches('\\\\S')",message="spec.patches[].patch is blank: give a strategic merge patch or a JSON 6902 patch"
	// +required
	Patch string `json:"patch"`

	// target selects the objects to patch. Without it, a strategic merge
	// patch patches the object it names; a JSON 6902 patch needs one.
	// +optional
	Target *GitSyncPatchTarget `json:"target,omitempty"`
}

// GitSyncPatchTarget selects built objects, as kustomize's patch target: an
// object matches when it matches every field given.
//
// +kubebuilder:validation:XValidation:rule="has(self.group) || has(self.version) || has(self.kind) || has(self.name) || has(self.namespace) || has(self.labelSelector) || has(self.annotationSelector)",message="spec.patches[].target is empty and would select every object: give a kind, a name or a selector (or remove the target to patch the object a strategic merge patch names)"
type GitSyncPatchTarget struct {
	// group of the objects, e.g. apps ("" is the core group).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`

	// version of the objects, e.g. v1.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Version string `json:"version,omitempty"`

	// kind of the objects, e.g. Deployment.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the objects: a regular expression matched against the whole
	// name, e.g. "web" or "web-.*".
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`

	// namespace of the objects: a regular expression matched against the
	// whole namespace.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// labelSelector selects objects by their labels, e.g. "app=web,tier!=db".
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^(\\\\s*(!\\\\s*([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\\\s*((==?|!=)\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?|\\\\s(in|notin)\\\\s*\\\\(\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*(,\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*)*\\\\))?)\\\\s*(,\\\\s*(!\\\\s*([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\\\s*((==?|!=)\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?|\\\\s(in|notin)\\\\s*\\\\(\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*(,\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*)*\\\\))?)\\\\s*)*)?$')",message="spec.patches[].target.labelSelector must be a label selector: comma-separated key, !key, key=value, key!=value, key in (a,b) or key notin (a,b)"
	// +optional
	LabelSelector string `json:"labelSelector,omitempty"`

	// annotationSelector selects objects by their annotations, with the
	// syntax of labelSelector.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^(\\\\s*(!\\\\s*([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\\\s*((==?|!=)\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?|\\\\s(in|notin)\\\\s*\\\\(\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*(,\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*)*\\\\))?)\\\\s*(,\\\\s*(!\\\\s*([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?|([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\\\s*((==?|!=)\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?|\\\\s(in|notin)\\\\s*\\\\(\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*(,\\\\s*([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\\\\s*)*\\\\))?)\\\\s*)*)?$')",message="spec.patches[].target.annotationSelector must be a selector: comma-separated key, !key, key=value, key!=value, key in (a,b) or key notin (a,b)"
	// +optional
	AnnotationSelector string `json:"annotationSelector,omitempty"`
}

// GitSyncImage overrides the name, tag or digest of an image in every
// container and initContainer of the built objects, as an entry of Flux's
// Kustomization spec.images.
//
// +kubebuilder:validation:XValidation:rule="has(self.newName) || has(self.newTag) || has(self.digest)",message="spec.images[] needs newName, newTag or digest to change the image"
type GitSyncImage struct {
	// name of the image to change, without a tag or digest, as written in
	// the objects, e.g. ghcr.io/org/web.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^\\\\s@]+$') && !self.matches(':[^/]*$')",message="spec.images[].name is the image name without a tag or digest, e.g. ghcr.io/org/web (put the tag in newTag, the digest in digest)"
	// +required
	Name string `json:"name"`

	// newName replaces the image name, keeping its tag unless newTag or
	// digest is set, e.g. registry.example.com/mirror/web.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^\\\\s@]+$') && !self.matches(':[^/]*$')",message="spec.images[].newName is an image name without a tag or digest, e.g. registry.example.com/web (put the tag in newTag, the digest in digest)"
	// +optional
	NewName string `json:"newName,omitempty"`

	// newTag replaces the image tag (and drops a digest unless digest is
	// set too), e.g. 1.4.2.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_][A-Za-z0-9_.-]*$')",message="spec.images[].newTag must be a tag: letters, digits, '_', '.' and '-', not starting with '.' or '-', e.g. 1.4.2"
	// +optional
	NewTag string `json:"newTag,omitempty"`

	// digest pins the image to a digest, e.g. sha256:<64 hex digits>; with
	// newTag the image becomes name:tag@digest.
	// +kubebuilder:validation:MaxLength=71
	// +kubebuilder:validation:XValidation:rule="self.matches('^sha256:[a-f0-9]{64}$')",message="spec.images[].digest must be sha256: followed by 64 lower-case hex digits"
	// +optional
	Digest string `json:"digest,omitempty"`
}
