package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeliveryRecordLimit bounds status.delivery.releases: the report and the
// figures computed from the records cover at most this many releases.
const DeliveryRecordLimit = 32

// DeliveryOutcome is how a release ended.
//
// +kubebuilder:validation:Enum=Running;Promoted;RolledBack;Failed;Superseded;Cancelled
type DeliveryOutcome string

// Release outcomes.
const (
	// DeliveryRunning is a release not ended yet.
	DeliveryRunning DeliveryOutcome = "Running"
	// DeliveryPromoted is a release whose revision was promoted: the primary
	// runs it and serves all traffic.
	DeliveryPromoted DeliveryOutcome = "Promoted"
	// DeliveryRolledBack is a release ended with all traffic back on the
	// primary (analysis, abort, rollback webhook, progress deadline).
	DeliveryRolledBack DeliveryOutcome = "RolledBack"
	// DeliveryFailed is a release whose promotion failed: the primary did
	// not become ready, traffic stays on the canary.
	DeliveryFailed DeliveryOutcome = "Failed"
	// DeliverySuperseded is a release replaced by a newer revision before it ended.
	DeliverySuperseded DeliveryOutcome = "Superseded"
	// DeliveryCancelled is a release whose target went back to the
	// promoted revision, or whose Canary was deleted, before it ended.
	DeliveryCancelled DeliveryOutcome = "Cancelled"
)

// RollbackCause is why a release was rolled back (or failed).
//
// +kubebuilder:validation:Enum=Analysis;Aborted;Webhook;ProgressDeadline;PromotionFailed
type RollbackCause string

// Rollback causes, the label values of sluice_delivery_rollbacks_total.
const (
	// RollbackAnalysis: failed checks reached the threshold, or a check
	// held the analysis past the progress deadline.
	RollbackAnalysis RollbackCause = "Analysis"
	// RollbackAborted: a person asked for it (sluice.dev/abort).
	RollbackAborted RollbackCause = "Aborted"
	// RollbackWebhook: a rollback webhook (a gate) asked for it.
	RollbackWebhook RollbackCause = "Webhook"
	// RollbackProgressDeadline: the canary did not become ready in time.
	RollbackProgressDeadline RollbackCause = "ProgressDeadline"
	// RollbackPromotionFailed: the promoted primary did not become ready;
	// the release failed with traffic left on the canary.
	RollbackPromotionFailed RollbackCause = "PromotionFailed"
)

// DeliveryStatus is the Canary's delivery record: counters since the Canary
// was created and the last releases. It is written by the status patch that
// records each transition, so it survives restarts and is counted once even
// when a patch conflicts and the reconcile decides again.
type DeliveryStatus struct {
	// releasesStarted counts the releases started (retries included).
	// +optional
	// +kubebuilder:validation:Minimum=0
	ReleasesStarted int64 `json:"releasesStarted,omitempty"`
	// promotions counts the releases promoted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Promotions int64 `json:"promotions,omitempty"`
	// rollbacks counts the releases rolled back (or failed), by cause.
	// +optional
	Rollbacks RollbackCounts `json:"rollbacks,omitempty"`
	// releases are the last releases, newest last, at most 32.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Releases []DeliveryRecord `json:"releases,omitempty"`
}

// RollbackCounts counts rolled back releases by cause.
type RollbackCounts struct {
	// analysis counts rollbacks by failed or held checks.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Analysis int64 `json:"analysis,omitempty"`
	// aborted counts rollbacks asked by a person (sluice.dev/abort).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Aborted int64 `json:"aborted,omitempty"`
	// webhook counts rollbacks asked by a rollback webhook.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Webhook int64 `json:"webhook,omitempty"`
	// progressDeadline counts rollbacks of canaries not ready in time.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ProgressDeadline int64 `json:"progressDeadline,omitempty"`
	// promotionFailed counts releases whose promoted primary did not become ready.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PromotionFailed int64 `json:"promotionFailed,omitempty"`
}

// DeliveryRecord is one release: what was released, from which commit, when
// it started and ended and how, with its lead time and time to restore.
type DeliveryRecord struct {
	// revision is the status.revision of the release.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Revision string `json:"revision"`
	// sourceRevision is the GitSync revision (<ref>@sha1:<commit>) that
	// started the release, when a GitSync applied it.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	SourceRevision string `json:"sourceRevision,omitempty"`
	// gitSync is the <namespace>/<name> of that GitSync.
	// +kubebuilder:validation:MaxLength=317
	// +optional
	GitSync string `json:"gitSync,omitempty"`
	// commitTime is the committer time of the source commit.
	// +optional
	CommitTime *metav1.Time `json:"commitTime,omitempty"`
	// appliedTime is when the GitSync applied the source revision.
	// +optional
	AppliedTime *metav1.Time `json:"appliedTime,omitempty"`
	// startTime is when the release started (status.releaseStartTime).
	// +required
	StartTime metav1.Time `json:"startTime"`
	// firstFailureTime is when the release first failed a check.
	// +optional
	FirstFailureTime *metav1.Time `json:"firstFailureTime,omitempty"`
	// endTime is when the release ended: promotion finished, or all traffic
	// back on the primary.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// outcome of the release.
	// +required
	Outcome DeliveryOutcome `json:"outcome"`
	// cause of a rollback or failure.
	// +optional
	Cause RollbackCause `json:"cause,omitempty"`
	// leadTimeSeconds is commitTime → endTime of a promoted release with a source commit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	LeadTimeSeconds *int64 `json:"leadTimeSeconds,omitempty"`
	// timeToRestoreSeconds is firstFailureTime → endTime of a rolled back
	// release that failed a check: until all traffic was back on the primary.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TimeToRestoreSeconds *int64 `json:"timeToRestoreSeconds,omitempty"`
}
