package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StageState is where a stage is with its current bundle.
//
// +kubebuilder:validation:Enum=Pending;Committed;Verifying;Soaking;Verified;Failed
type StageState string

// Stage states, in the order a bundle goes through them.
const (
	// StagePending: the bundle is to be written (or its pull request is open).
	StagePending StageState = "Pending"
	// StageCommitted: the commit is on the branch; no release of it started yet.
	StageCommitted StageState = "Committed"
	// StageVerifying: the Canary is releasing the commit.
	StageVerifying StageState = "Verifying"
	// StageSoaking: the Canary promoted the release; soakTime runs.
	StageSoaking StageState = "Soaking"
	// StageVerified: promoted (and soaked); the bundle may go to the next stage.
	StageVerified StageState = "Verified"
	// StageFailed: the release was rolled back, superseded, or the change
	// could not land; the bundle never goes further.
	StageFailed StageState = "Failed"
)

// Pipeline condition reasons, also the reasons of stage states and events.
const (
	PipelineReasonSucceeded              = "Succeeded"
	PipelineReasonProgressing            = "Progressing"
	PipelineReasonSuspended              = "Suspended"
	PipelineReasonRegistryUnreachable    = "RegistryUnreachable"
	PipelineReasonInvalidPolicy          = "InvalidPolicy"
	PipelineReasonNoMatchingTag          = "NoMatchingTag"
	PipelineReasonInvalidTimeZone        = "InvalidTimeZone"
	PipelineReasonSetterNotFound         = "SetterNotFound"
	PipelineReasonPushRejected           = "PushRejected"
	PipelineReasonGitUnreachable         = "GitUnreachable"
	PipelineReasonPullRequestOpen        = "PullRequestOpen"
	PipelineReasonPullRequestClosed      = "PullRequestClosed"
	PipelineReasonWaitingForApproval     = "WaitingForApproval"
	PipelineReasonOutsidePromotionWindow = "OutsidePromotionWindow"
	PipelineReasonHeld                   = "Held"
	PipelineReasonVerificationFailed     = "VerificationFailed"
	PipelineReasonSuperseded             = "Superseded"
	PipelineReasonCanaryNotFound         = "CanaryNotFound"
	PipelineReasonRollbackRejected       = "RollbackRejected"
	PipelineReasonApprovalRejected       = "ApprovalRejected"
	PipelineReasonSoakFailed             = "SoakFailed"
	PipelineReasonSoakChecksPending      = "SoakChecksPending"
	// PipelineReasonAlreadyInBranch: the write found the bundle already in
	// the stage's branch, so no release will verify it there; the stage
	// adopts it once its Canary is idle.
	PipelineReasonAlreadyInBranch = "AlreadyInBranch"
	// PipelineReasonAdopted: a bundle the branch already held, verified
	// without a release because the Canary was idle after a successful one.
	PipelineReasonAdopted = "Adopted"
)

// PipelineSoakChecksLimit bounds status.stages[].soakChecks, as spec.analysis.metrics is bounded.
const PipelineSoakChecksLimit = 64

// PipelineStatus is the observed state of a Pipeline: everything the next
// decision needs, so that a restart neither loses a promotion nor writes twice.
type PipelineStatus struct {
	// conditions are Ready (nothing in progress nor failing), Reconciling
	// (a stage is being promoted) and Stalled (a source or a stage needs a fix).
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec last decided upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// bundles found so far, oldest first, at most 32 (the oldest not
	// current in any stage are dropped first). A bundle never changes.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=id
	// +optional
	Bundles []Bundle `json:"bundles,omitempty"`

	// stages are where each stage is, in spec order.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +optional
	Stages []PipelineStageStatus `json:"stages,omitempty"`

	// handledRequests are the annotation values already acted upon.
	// +optional
	HandledRequests *PipelineHandledRequests `json:"handledRequests,omitempty"`

	// alerts record, per stage, the events already sent to spec.alerts.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=stage
	// +optional
	Alerts []PipelineAlertRecord `json:"alerts,omitempty"`
}

// Bundle is what is promoted: images pinned by digest, immutable. Its id is
// derived from the digests, so the same images are the same bundle.
type Bundle struct {
	// id is the first 16 hex digits of the SHA-256 of the sources' names and digests.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{16}$`
	// +required
	ID string `json:"id"`

	// images of the bundle, one per source, ordered by source name.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +required
	Images []BundleImage `json:"images"`

	// configRevision is the revision of the first stage's configuration
	// (its GitSync's applied revision) when the bundle was found.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	ConfigRevision string `json:"configRevision,omitempty"`

	// createdAt is when the bundle was found.
	// +required
	CreatedAt metav1.Time `json:"createdAt"`
}

// BundleImage is an image pinned by digest, with its tag for people.
type BundleImage struct {
	// source is the name of the source the image comes from.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Source string `json:"source"`
	// repository of the image, e.g. ghcr.io/org/web.
	// +kubebuilder:validation:MaxLength=512
	// +required
	Repository string `json:"repository"`
	// tag of the image, e.g. 1.1.0.
	// +kubebuilder:validation:MaxLength=128
	// +required
	Tag string `json:"tag"`
	// digest of the image, sha256:<64 hex digits>.
	// +kubebuilder:validation:MaxLength=71
	// +required
	Digest string `json:"digest"`
}

// PipelineStageStatus is where a stage is: its current bundle, the commit
// that brought it and the verdict on it.
type PipelineStageStatus struct {
	// name of the stage.
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// bundle is the id of the stage's current bundle: written, or to be written.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Bundle string `json:"bundle,omitempty"`

	// commit is the SHA of the commit that brought the bundle.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Commit string `json:"commit,omitempty"`

	// pullRequest is the URL of the pull request that carries the bundle, while it is open.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	PullRequest string `json:"pullRequest,omitempty"`

	// state of the current bundle in this stage.
	// +optional
	State StageState `json:"state,omitempty"`

	// reason is why the stage is in its state, or what it waits for
	// (WaitingForApproval, OutsidePromotionWindow, Held, ...).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`

	// message says it to people.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`

	// release is the Canary release (its status.revision) that verifies the bundle.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Release string `json:"release,omitempty"`

	// promotedAt is when the Canary promoted that release; the soak counts from here.
	// +optional
	PromotedAt *metav1.Time `json:"promotedAt,omitempty"`

	// soakChecks are the last checks of the Canary's metrics on the primary
	// while the bundle soaks (soakChecks: Metrics), one per metric, in the
	// Canary's order, without their queries.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	SoakChecks []CheckResult `json:"soakChecks,omitempty"`

	// lastSoakCheck is when the metrics were last checked during the soak;
	// the next check is an analysis interval later.
	// +optional
	LastSoakCheck *metav1.Time `json:"lastSoakCheck,omitempty"`

	// rollback is true when the current bundle was written by a rollback request.
	// +optional
	Rollback bool `json:"rollback,omitempty"`

	// lastTransitionTime is when the state last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// gate is the next bundle for this stage while it waits at the gate
	// (WaitingForApproval, OutsidePromotionWindow, WaitingForWebhook, Held).
	// +optional
	Gate *StageGate `json:"gate,omitempty"`

	// history are the earlier bundles of this stage and how they ended, newest last, at most 10.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	History []StageRecord `json:"history,omitempty"`

	// approvals are the bundles approved for this stage, newest last, at most 8.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Approvals []StageApproval `json:"approvals,omitempty"`
}

// StageGate is a bundle waiting to be written to a stage, and why it waits.
type StageGate struct {
	// bundle id waiting.
	// +kubebuilder:validation:MaxLength=16
	// +required
	Bundle string `json:"bundle"`
	// reason it waits: WaitingForApproval, OutsidePromotionWindow, WaitingForWebhook or Held.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Reason string `json:"reason"`
	// message says what lets it pass, e.g. the annotation to set or when the window opens.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
	// lastWebhookCheck is when the stage's webhook gate last answered for
	// this bundle (WaitingForWebhook); it is asked again a poll interval later.
	// +optional
	LastWebhookCheck *metav1.Time `json:"lastWebhookCheck,omitempty"`
}

// StageRecord is an earlier bundle of a stage and how it ended there.
type StageRecord struct {
	// bundle id.
	// +kubebuilder:validation:MaxLength=16
	// +required
	Bundle string `json:"bundle"`
	// commit that brought it.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Commit string `json:"commit,omitempty"`
	// state it ended in: Verified or Failed.
	// +required
	State StageState `json:"state"`
	// reason it ended so.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// release that verified or failed it.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Release string `json:"release,omitempty"`
	// time it left the stage.
	// +required
	Time metav1.Time `json:"time"`
}

// StageApproval is a bundle approved for a stage with a manual gate.
type StageApproval struct {
	// bundle id approved.
	// +kubebuilder:validation:MaxLength=16
	// +required
	Bundle string `json:"bundle"`
	// time the approval was handled.
	// +required
	Time metav1.Time `json:"time"`
}

// PipelineHandledRequests records the annotation values already handled.
type PipelineHandledRequests struct {
	// approve is the sluice.dev/approve value last handled.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Approve string `json:"approve,omitempty"`
	// rollbackTo is the sluice.dev/rollback-to value last handled.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	RollbackTo string `json:"rollbackTo,omitempty"`
}

// GetConditions returns the status conditions.
func (in *Pipeline) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *Pipeline) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }
