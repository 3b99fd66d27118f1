package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitSyncHelmUpgrade tells what GitSync does when a new release of a chart
// (a new chart version, values, Git revision or spec) is applied and then
// fails its health checks (spec.wait, spec.healthChecks).
type GitSyncHelmUpgrade struct {
	// remediation retries a release that fails its health checks, then
	// rolls back to the last healthy release. Without it a failed
	// release stays applied (HealthCheckFailed), as for kustomize output.
	// +optional
	Remediation *GitSyncHelmUpgradeRemediation `json:"remediation,omitempty"`
}

// GitSyncHelmUpgradeRemediation is modelled on Flux's HelmRelease
// upgrade.remediation with the rollback strategy.
type GitSyncHelmUpgradeRemediation struct {
	// retries is how many more times a release that failed its health
	// checks is checked again (re-applied, then waited for within
	// spec.timeout) before GitSync rolls back to the last healthy release.
	// Defaults to 0: roll back at the first failure.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries int32 `json:"retries,omitempty"`
}

// GitSyncHelmReleaseStatus is the state of one release of status.helm.history.
// +kubebuilder:validation:Enum=Deployed;Failed;Superseded;RolledBack
type GitSyncHelmReleaseStatus string

const (
	// GitSyncHelmReleaseDeployed is the healthy release running now (the
	// one a failed upgrade is rolled back to).
	GitSyncHelmReleaseDeployed GitSyncHelmReleaseStatus = "Deployed"
	// GitSyncHelmReleaseFailed failed its health checks; it is retried or
	// about to be rolled back.
	GitSyncHelmReleaseFailed GitSyncHelmReleaseStatus = "Failed"
	// GitSyncHelmReleaseSuperseded was healthy and then replaced by a newer release.
	GitSyncHelmReleaseSuperseded GitSyncHelmReleaseStatus = "Superseded"
	// GitSyncHelmReleaseRolledBack failed its health checks and was
	// replaced by the last healthy release.
	GitSyncHelmReleaseRolledBack GitSyncHelmReleaseStatus = "RolledBack"
)

// GitSyncHelmRelease is one release of a chart in status.helm.history. The
// objects of a healthy release are kept in the Secret
// sluice-helm-<gitsync>-v<revision> of the GitSync's namespace, which a
// rollback re-applies.
type GitSyncHelmRelease struct {
	// revision numbers the releases of this GitSync, from 1.
	// +kubebuilder:validation:Minimum=1
	// +required
	Revision int32 `json:"revision"`

	// chartVersion is the version of the chart rendered.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`

	// valuesDigest is the sha256 of the merged values.
	// +kubebuilder:validation:MaxLength=71
	// +optional
	ValuesDigest string `json:"valuesDigest,omitempty"`

	// digest is the sha256 of the objects rendered (after spec.patches and
	// spec.postBuild): what tells two releases apart.
	// +kubebuilder:validation:MaxLength=71
	// +required
	Digest string `json:"digest"`

	// deleteHooksDigest is the sha256 of the release's pre-delete and
	// post-delete hooks kept in its Secret, checked before they run when the
	// GitSync is deleted; empty when the release has none.
	// +kubebuilder:validation:MaxLength=71
	// +optional
	DeleteHooksDigest string `json:"deleteHooksDigest,omitempty"`

	// status is Deployed, Failed, Superseded or RolledBack.
	// +required
	Status GitSyncHelmReleaseStatus `json:"status"`

	// time is when the release got this status.
	// +required
	Time metav1.Time `json:"time"`
}

// GitSyncHelmRemediationStatus is the progress of the remediation of a
// release that failed its health checks, kept in status so that a restart
// continues it. It is cleared when the spec, the Git revision, the values
// or the chart version change (a new attempt) or a release is healthy.
type GitSyncHelmRemediationStatus struct {
	// revision is the failed release's revision in status.helm.history.
	// +kubebuilder:validation:Minimum=1
	// +required
	Revision int32 `json:"revision"`

	// chartVersion is the failed release's chart version.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`

	// digest is the failed release's digest (status.helm.history[].digest).
	// +kubebuilder:validation:MaxLength=71
	// +required
	Digest string `json:"digest"`

	// gitRevision is the Git revision the release failed at.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	GitRevision string `json:"gitRevision,omitempty"`

	// generation is the GitSync's metadata.generation the release failed at.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Generation int64 `json:"generation,omitempty"`

	// failures counts the health check failures of the release.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Failures int32 `json:"failures,omitempty"`

	// rolledBackTo is the revision rolled back to; 0 until the rollback is done.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RolledBackTo int32 `json:"rolledBackTo,omitempty"`

	// message is the last health check failure.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}
