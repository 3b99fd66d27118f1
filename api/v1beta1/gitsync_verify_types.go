package v1beta1

// SourceVerifiedCondition is True when the signature of the revision a
// GitSync fetched was verified against the keys of spec.verify.secretRef,
// and False, with the reason, when it was not (Flux's SourceVerified).
const SourceVerifiedCondition = "SourceVerified"

// GitSyncVerifyMode tells which Git objects of a revision must be signed.
// +kubebuilder:validation:Enum=HEAD;Tag;TagAndHEAD
type GitSyncVerifyMode string

// The modes of spec.verify.mode, as Flux's GitRepository spec.verify.mode.
const (
	// GitSyncVerifyHEAD verifies the commit that is synced.
	GitSyncVerifyHEAD GitSyncVerifyMode = "HEAD"
	// GitSyncVerifyTag verifies the annotated tag of spec.ref.tag (or the
	// tag picked by spec.ref.semver), not the commit it points to.
	GitSyncVerifyTag GitSyncVerifyMode = "Tag"
	// GitSyncVerifyTagAndHEAD verifies the annotated tag and its commit.
	GitSyncVerifyTagAndHEAD GitSyncVerifyMode = "TagAndHEAD"
)

// GitSyncVerification makes a GitSync apply only revisions signed by a
// trusted key (OpenPGP, or SSH as git's gpg.format=ssh). A revision that is
// not is never applied, and nothing is pruned.
type GitSyncVerification struct {
	// mode tells what must be signed: HEAD (the commit), Tag (the annotated
	// tag) or TagAndHEAD (both). Tag and TagAndHEAD need spec.ref.tag or
	// spec.ref.semver. Defaults to HEAD.
	// +kubebuilder:default=HEAD
	// +optional
	Mode GitSyncVerifyMode `json:"mode,omitempty"`

	// secretRef names a Secret in the GitSync's namespace holding the
	// trusted public keys: keys ending in .asc or .gpg hold armored OpenPGP
	// public keys (gpg --export --armor); keys ending in .pub, or named
	// allowed_signers or authorized_keys, hold SSH public keys, one a line.
	// +required
	SecretRef GitSyncVerifySecretRef `json:"secretRef"`
}

// GitSyncVerifySecretRef names the Secret of the trusted keys.
type GitSyncVerifySecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
}

// VerifyModeOrDefault is spec.verify.mode, HEAD when empty; "" without spec.verify.
func (in *GitSync) VerifyModeOrDefault() GitSyncVerifyMode {
	if in.Spec.Verify == nil {
		return ""
	}
	if in.Spec.Verify.Mode == "" {
		return GitSyncVerifyHEAD
	}
	return in.Spec.Verify.Mode
}
