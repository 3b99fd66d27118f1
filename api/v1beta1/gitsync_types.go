package v1beta1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations GitSync puts on, or reads from, the objects it applies.
const (
	// GitSyncNameLabel names the GitSync that applied an object.
	GitSyncNameLabel = "gitsync.sluice.dev/name"
	// GitSyncNamespaceLabel is the namespace of the GitSync that applied an object.
	GitSyncNamespaceLabel = "gitsync.sluice.dev/namespace"
	// GitSyncPruneAnnotation set to "disabled" keeps an object in the cluster
	// after it is removed from Git.
	GitSyncPruneAnnotation = "gitsync.sluice.dev/prune"
	// GitSyncPruneDisabled is the value of GitSyncPruneAnnotation that opts out of pruning.
	GitSyncPruneDisabled = "disabled"
	// GitSyncSyncRequestedAnnotation on a GitSync requests a sync now (fetch,
	// build, apply) whatever its interval. Any new value is a new request:
	//   kubectl annotate gitsync/NAME sluice.dev/sync-requested-at="$(date +%s)" --overwrite
	// The push receiver sets it too.
	GitSyncSyncRequestedAnnotation = "sluice.dev/sync-requested-at"
	// GitSyncFinalizer lets a GitSync with spec.prune delete what it applied
	// before it goes away.
	GitSyncFinalizer = "gitsync.sluice.dev/finalizer"
)

// ReconcilingCondition is True while a GitSync fetches, builds and applies a revision.
const ReconcilingCondition = "Reconciling"

// Defaults of a GitSync.
const (
	DefaultGitSyncBranch   = "main"
	DefaultGitSyncInterval = time.Minute
	DefaultGitSyncTimeout  = time.Minute
)

// GitSync keeps the objects built from a path of a Git repository applied
// to the cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gs,categories=sluice
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.lastAppliedRevision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.dependsOn) || !self.spec.dependsOn.exists(d, d.name == self.metadata.name && !has(d.namespace))",message="spec.dependsOn may not name the GitSync itself"
type GitSync struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the GitSync: the repository, the path and how to apply it.
	// +required
	Spec GitSyncSpec `json:"spec"`
	// status is the observed state of the GitSync, written by Sluice.
	// +optional
	Status GitSyncStatus `json:"status,omitempty"`
}

// GitSyncList is a list of GitSyncs.
//
// +kubebuilder:object:root=true
type GitSyncList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitSync `json:"items"`
}

// GitSyncSpec is the desired state of a GitSync.
//
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.mode) || self.verify.mode == 'HEAD' || (has(self.ref) && (has(self.ref.tag) || has(self.ref.semver)) && !has(self.ref.commit))",message="spec.verify.mode Tag and TagAndHEAD verify a tag: they need spec.ref.tag or spec.ref.semver (and no spec.ref.commit); use mode HEAD to verify a branch or a commit"
// +kubebuilder:validation:XValidation:rule="!has(self.helm) || !has(self.path)",message="spec.path is the directory kustomize builds; with spec.helm the objects come from the chart: remove spec.path (a chart in Git is spec.helm.chart.path)"
type GitSyncSpec struct {
	// url of the repository: https://, ssh://, or http:// on loopback only
	// (credentials are never sent in clear text over a network).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('ssh://') || self.matches('^http://(127\\\\.0\\\\.0\\\\.1|localhost|\\\\[::1\\\\])(:[0-9]+)?(/.*)?$')",message="spec.url must be an https:// or ssh:// URL (http:// only on loopback)"
	// +required
	URL string `json:"url"`

	// ref is the branch, tag, semver range or commit to sync. Defaults to the branch main.
	// +optional
	Ref *GitRef `json:"ref,omitempty"`

	// path of the directory to build, relative to the repository root.
	// Defaults to the root. It may not contain a ".." element.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="spec.path may not contain a '..' element"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="spec.path must be relative to the repository root, e.g. deploy/prod"
	// +optional
	Path string `json:"path,omitempty"`

	// interval between two syncs (fetch, build, and apply when something
	// changed); drift is put back as soon as a watch sees it (see
	// driftCheckInterval). Defaults to 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.interval must be greater than 0, e.g. 1m"
	// +kubebuilder:default="1m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// driftCheckInterval is how often a sync compares every applied object
	// with the cluster even when no watch reported a change: the safety net
	// of the drift watches (see docs/gitsync.md, Drift). Defaults to 1h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.driftCheckInterval must be at least 1s, e.g. 1h"
	// +optional
	DriftCheckInterval *metav1.Duration `json:"driftCheckInterval,omitempty"`

	// timeout bounds a fetch, and the health wait. Defaults to 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.timeout must be greater than 0, e.g. 1m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// secretRef names a Secret in the GitSync's namespace with the credentials:
	// for HTTPS, keys username and password, or bearerToken; for SSH, keys
	// identity (a private key) and known_hosts.
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// prune deletes the objects removed from Git. Defaults to true.
	// +kubebuilder:default=true
	// +optional
	Prune *bool `json:"prune,omitempty"`

	// targetNamespace sets the namespace of the namespaced objects that do not set one.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// suspend stops the syncs; the applied objects stay as they are.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// wait waits, within spec.timeout, for the applied objects to become
	// healthy (kstatus Current) before the GitSync is Ready.
	// +optional
	Wait bool `json:"wait,omitempty"`

	// healthChecks lists objects, applied by this GitSync or not, that must
	// become healthy (kstatus Current) within spec.timeout after each apply
	// before the GitSync is Ready. With spec.wait, they are checked along
	// with every applied object.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	HealthChecks []GitSyncObjectRef `json:"healthChecks,omitempty"`

	// serviceAccountName is a ServiceAccount in the GitSync's namespace that
	// the apply, the prune and the health checks impersonate, so that a
	// GitSync can change only what that account may change. Empty: the
	// controller's own identity.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// kubeConfig makes the GitSync apply to another cluster, whose
	// kubeconfig is in a Secret of the GitSync's namespace; the apply,
	// prune, health checks and spec.serviceAccountName then act there.
	// Empty: the cluster Sluice runs in.
	// +optional
	KubeConfig *GitSyncKubeConfig `json:"kubeConfig,omitempty"`

	// receiver enables the push webhook receiver for this GitSync:
	// POST /hooks/<namespace>/<name> on the manager's --git-receiver-address,
	// verified with the Secret's key "token" (GitHub X-Hub-Signature-256,
	// GitLab X-Gitlab-Token, or Sluice's X-Sluice-Signature), requests a sync now.
	// +optional
	Receiver *GitSyncReceiver `json:"receiver,omitempty"`

	// postBuild substitutes ${var} variables in the built objects before
	// they are applied, from literal values and from ConfigMaps and Secrets.
	// +optional
	PostBuild *GitSyncPostBuild `json:"postBuild,omitempty"`

	// patches are kustomize patches (strategic merge or JSON 6902) applied
	// in order to the built objects, before postBuild.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Patches []GitSyncPatch `json:"patches,omitempty"`

	// images override the name, tag or digest of container images in the
	// built objects, before postBuild.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Images []GitSyncImage `json:"images,omitempty"`

	// dependsOn lists GitSyncs that must be ready (at their last fetched
	// revision) before this one fetches, applies or prunes. See
	// docs/gitsync.md, "Dependencies".
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	DependsOn []GitSyncDependency `json:"dependsOn,omitempty"`

	// verify applies only revisions signed by a key of a Secret (OpenPGP
	// or SSH); see docs/gitsync.md, "Signed commits".
	// +optional
	Verify *GitSyncVerification `json:"verify,omitempty"`

	// decryption decrypts SOPS-encrypted files (age or OpenPGP) during the
	// build with the keys of a Secret. Without it, an encrypted file fails
	// the build instead of applying ciphertext.
	// +optional
	Decryption *GitSyncDecryption `json:"decryption,omitempty"`

	// commitStatus posts each revision's outcome to its commit on the Git host; see docs/commit-status.md.
	// +optional
	CommitStatus *GitSyncCommitStatus `json:"commitStatus,omitempty"`

	// alerts send the events of this GitSync (revision applied, sync
	// failed, drift corrected, ...) to AlertProviders; see docs/gitsync.md,
	// "Notifications".
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []GitSyncAlert `json:"alerts,omitempty"`

	// helm renders a Helm chart (from a Helm repository, an OCI registry or
	// the checkout) instead of building spec.path; see docs/gitsync.md, "Helm charts".
	// +optional
	Helm *GitSyncHelm `json:"helm,omitempty"`
}

// GitSyncReceiver configures the push webhook receiver of a GitSync.
type GitSyncReceiver struct {
	// secretRef names a Secret in the GitSync's namespace whose key "token"
	// is the webhook secret shared with the Git host.
	// +kubebuilder:validation:XValidation:rule="size(self.name) > 0 && size(self.name) <= 253",message="spec.receiver.secretRef.name must be a Secret name"
	// +required
	SecretRef corev1.LocalObjectReference `json:"secretRef"`
}

// GitSyncObjectRef names an object to health-check.
type GitSyncObjectRef struct {
	// apiVersion of the object, e.g. apps/v1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	APIVersion string `json:"apiVersion"`
	// kind of the object, e.g. Deployment.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Kind string `json:"kind"`
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// namespace of the object; defaults to the GitSync's (spec.targetNamespace
	// when set). Empty for cluster-scoped kinds.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// GitRef selects a revision. When several fields are set, the first of
// commit, semver, tag, branch wins.
//
// +kubebuilder:validation:XValidation:rule="has(self.branch) || has(self.tag) || has(self.semver) || has(self.commit)",message="spec.ref needs one of branch, tag, semver or commit (or remove spec.ref to follow the branch main)"
// +kubebuilder:validation:XValidation:rule="!(has(self.commit) && has(self.semver))",message="spec.ref.commit pins one revision and spec.ref.semver picks the highest matching tag: set one of them"
type GitRef struct {
	// branch to follow.
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="size(self) > 0 && !self.matches('[\\\\x00-\\\\x20~^:?*\\\\[\\\\\\\\\\\\x7f]|\\\\.\\\\.|@\\\\{|//|^[-/.]|[/.]$|\\\\.lock$')",message="spec.ref.branch must be a Git branch name such as main or release/1.2 (no spaces, no '..', none of ~^:?*[ and no leading '-')"
	// +optional
	Branch string `json:"branch,omitempty"`

	// tag to sync.
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="size(self) > 0 && !self.matches('[\\\\x00-\\\\x20~^:?*\\\\[\\\\\\\\\\\\x7f]|\\\\.\\\\.|@\\\\{|//|^[-/.]|[/.]$|\\\\.lock$')",message="spec.ref.tag must be a Git tag name such as v1.2.3 (no spaces, no '..', none of ~^:?*[ and no leading '-')"
	// +optional
	Tag string `json:"tag,omitempty"`

	// semver is a constraint (e.g. ">=1.2.0 <2.0.0"); the highest tag that
	// satisfies it is synced.
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches('^[ ]*[=<>!~^vV]*[ ]*[0-9xX*]') && self.matches('^[0-9A-Za-z.*+<>=!~^|, -]+$')",message="spec.ref.semver must be a semver constraint such as '>=1.0.0' or '1.2.x'"
	// +optional
	SemVer string `json:"semver,omitempty"`

	// commit is a full SHA-1 to sync.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{40}$`
	// +optional
	// +kubebuilder:validation:MaxLength=40
	Commit string `json:"commit,omitempty"`
}

// GitSyncInventoryEntry identifies one applied object.
type GitSyncInventoryEntry struct {
	// group is the API group of the object; empty for the core group.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group,omitempty"`
	// version is the API version of the object.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Version string `json:"version"`
	// kind of the object.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`
	// namespace of the object; empty for a cluster-scoped object.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// name of the object.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// GitSyncStatus is the observed state of a GitSync.
type GitSyncStatus struct {
	// conditions are Ready, Reconciling, Stalled and, with spec.verify, SourceVerified.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastAttemptedRevision is the revision last fetched, "<ref>@sha1:<sha>".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// lastAppliedRevision is the revision last applied with success, "<ref>@sha1:<sha>".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`

	// inventory lists the objects applied from LastAppliedRevision.
	// +listType=atomic
	// +optional
	// +kubebuilder:validation:MaxItems=50000
	Inventory []GitSyncInventoryEntry `json:"inventory,omitempty"`

	// lastFailureReason is the reason of the last failed sync; empty after a success.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastFailureReason string `json:"lastFailureReason,omitempty"`

	// lastFailureMessage tells what went wrong in the last failed sync.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	LastFailureMessage string `json:"lastFailureMessage,omitempty"`

	// lastHandledSyncRequest is the value of the sluice.dev/sync-requested-at
	// annotation when the last sync that followed it finished (with success
	// or not): a client that set the annotation waits for this to equal it.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`

	// lastAppliedDigest is the sha256 of the objects last applied with
	// success, as built (after substitution, patches and preparation): an
	// object changed at the same digest was changed by someone else, and
	// its correction is counted as drift.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	LastAppliedDigest string `json:"lastAppliedDigest,omitempty"`

	// lastAppliedTime is when LastAppliedRevision was last applied with success.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`

	// lastAppliedCommit describes the commit of lastAppliedRevision (its
	// subject, author and time), for the people who follow a sync.
	// +optional
	LastAppliedCommit *GitSyncCommit `json:"lastAppliedCommit,omitempty"`

	// commitStatus is the last commit status posted (or about to be) with spec.commitStatus.
	// +optional
	CommitStatus *GitSyncCommitStatusRecord `json:"commitStatus,omitempty"`

	// alerts record, per spec.alerts entry, the failure last sent, so that a
	// failure is sent once and then only as a reminder.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []GitSyncAlertStatus `json:"alerts,omitempty"`

	// helm records the chart release last applied, with spec.helm.
	// +optional
	Helm *GitSyncHelmStatus `json:"helm,omitempty"`
}

// IntervalOrDefault is spec.interval, or one minute.
func (in *GitSync) IntervalOrDefault() time.Duration {
	if in.Spec.Interval != nil && in.Spec.Interval.Duration > 0 {
		return in.Spec.Interval.Duration
	}
	return DefaultGitSyncInterval
}

// TimeoutOrDefault is spec.timeout, or one minute.
func (in *GitSync) TimeoutOrDefault() time.Duration {
	if in.Spec.Timeout != nil && in.Spec.Timeout.Duration > 0 {
		return in.Spec.Timeout.Duration
	}
	return DefaultGitSyncTimeout
}

// PruneEnabled is spec.prune, true when unset.
func (in *GitSync) PruneEnabled() bool { return in.Spec.Prune == nil || *in.Spec.Prune }

// GetConditions returns the status conditions.
func (in *GitSync) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *GitSync) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

func init() {
	SchemeBuilder.Register(&GitSync{}, &GitSyncList{})
}
