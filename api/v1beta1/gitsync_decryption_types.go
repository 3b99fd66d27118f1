package v1beta1

// GitSyncDecryptionProvider names the tool that decrypts the files of a
// GitSync. An enum rather than a boolean so that another provider can be
// added without a new field.
// +kubebuilder:validation:Enum=sops
type GitSyncDecryptionProvider string

// GitSyncDecryptionSOPS decrypts SOPS files with age and OpenPGP keys.
const GitSyncDecryptionSOPS GitSyncDecryptionProvider = "sops"

// GitSyncDecryption decrypts SOPS-encrypted manifests and secretGenerator
// files during the build, as Flux's Kustomization spec.decryption.
type GitSyncDecryption struct {
	// provider of the decryption; only "sops".
	// +required
	Provider GitSyncDecryptionProvider `json:"provider"`

	// secretRef names a Secret in the GitSync's namespace that holds the
	// private keys: age identities in keys ending ".agekey" and armored
	// OpenPGP private keys in keys ending ".asc". Keys are read from this
	// Secret only, never from the controller's environment or home.
	// +required
	SecretRef GitSyncDecryptionSecretRef `json:"secretRef"`
}

// GitSyncDecryptionSecretRef names the Secret of the decryption keys.
type GitSyncDecryptionSecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="spec.decryption.secretRef.name must be a Secret name: lower-case letters, digits, '-' and '.'"
	// +required
	Name string `json:"name"`
}
