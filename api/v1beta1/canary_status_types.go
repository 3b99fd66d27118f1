package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryPhase is the phase of a Canary's release. It is derived from the
// conditions and the release progress; conditions are the source of truth.
//
// +kubebuilder:validation:Enum="";Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating;Terminated
type CanaryPhase string

// Canary phases, with Flagger's names.
const (
	CanaryPhaseInitializing     CanaryPhase = "Initializing"
	CanaryPhaseInitialized      CanaryPhase = "Initialized"
	CanaryPhaseWaiting          CanaryPhase = "Waiting"
	CanaryPhaseProgressing      CanaryPhase = "Progressing"
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	CanaryPhasePromoting        CanaryPhase = "Promoting"
	CanaryPhaseFinalising       CanaryPhase = "Finalising"
	CanaryPhaseSucceeded        CanaryPhase = "Succeeded"
	CanaryPhaseFailed           CanaryPhase = "Failed"
	CanaryPhaseTerminating      CanaryPhase = "Terminating"
	CanaryPhaseTerminated       CanaryPhase = "Terminated"
)

// Condition types of a Canary, in the kstatus vocabulary plus the domain ones.
const (
	// ReadyCondition is True when the last revision is promoted and no
	// release is running, so `kubectl wait --for=condition=Ready` means
	// "my revision is live".
	ReadyCondition = "Ready"
	// ProgressingCondition is True while a release is in progress; the
	// Reconciling condition (kstatus) says the same unless Stalled.
	ProgressingCondition = "Progressing"
	// StalledCondition is True when the Canary cannot make progress until its
	// spec or the cluster is fixed (bad reference, unknown provider, ...), and
	// while the last release is Failed (kstatus reads it as Failed).
	StalledCondition = "Stalled"
	// PromotedCondition is True when the revision in lastAppliedSpec has been
	// promoted to the primary.
	PromotedCondition = "Promoted"
	// MetricsReadyCondition is False when a metric cannot be checked because
	// of its configuration (MetricTemplate or Secret missing, provider type
	// unsupported, template not rendering); its message names what is wrong.
	MetricsReadyCondition = "MetricsReady"
)

// CanaryStatus is the observed state of a Canary. All release progress lives
// here, so a restarted controller continues where the last one stopped.
type CanaryStatus struct {
	// conditions are Ready, Progressing, Reconciling, Stalled, Promoted and MetricsReady.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase of the current release.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// failedChecks is the number of failed checks of the current analysis.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`

	// canaryWeight is the traffic weight routed to the canary.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// baselineWeight is the traffic weight routed to the baseline
	// (spec.analysis.baseline), equal to canaryWeight while the analysis
	// runs and 0 otherwise.
	// +optional
	BaselineWeight int32 `json:"baselineWeight,omitempty"`

	// iterations is the number of analysis steps done in the current release.
	// +optional
	Iterations int32 `json:"iterations,omitempty"`

	// trackedConfigs are the checksums of the ConfigMaps and Secrets the target
	// uses, keyed configmap/<name> or secret/<name>.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`

	// lastAppliedSpec is the hash of the target's pod template last seen.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// lastPromotedSpec is the hash of the pod template last promoted.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// lastTrackedRevision is kept for compatibility with Flagger.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastTrackedRevision string `json:"lastTrackedRevision,omitempty"`

	// lastTransitionTime is when the phase last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// sessionAffinityCookie is the canary cookie of the current release.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`

	// primarySessionAffinityCookie is the primary cookie of the current release.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`

	// previousSessionAffinityCookie is the canary cookie of the previous
	// release, expired on the clients after promotion.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`

	// revision identifies the revision under release: a hash of the pod
	// template hash and the tracked config checksums.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Revision string `json:"revision,omitempty"`

	// lastStepTime is when the last analysis step ran; the next one is due
	// one analysis interval later.
	// +optional
	LastStepTime *metav1.Time `json:"lastStepTime,omitempty"`

	// notReadySince is when the workload being waited for (the canary during
	// analysis, the primary during initialization and promotion) was first
	// seen not ready; progressDeadlineSeconds counts from here.
	// +optional
	NotReadySince *metav1.Time `json:"notReadySince,omitempty"`

	// heldSince is when the analysis was first held by a check with
	// onError: Hold; past progressDeadlineSeconds from here the release is
	// rolled back (HoldExpired).
	// +optional
	HeldSince *metav1.Time `json:"heldSince,omitempty"`

	// inconclusiveSince is when an inconclusive metric paused the analysis;
	// the release waits for promote or abort, and is rolled back
	// (InconclusiveExpired) past progressDeadlineSeconds from here.
	// +optional
	InconclusiveSince *metav1.Time `json:"inconclusiveSince,omitempty"`

	// consecutiveSuccesses is the number of consecutive passing analysis
	// steps of the current release, compared with spec.analysis.successLimit.
	// +optional
	ConsecutiveSuccesses int32 `json:"consecutiveSuccesses,omitempty"`

	// mirrored is true while traffic is mirrored to the canary.
	// +optional
	Mirrored bool `json:"mirrored,omitempty"`

	// trackedConfigVersions are the resourceVersions of the tracked
	// ConfigMaps and Secrets whose checksums are in trackedConfigs, so that
	// their data is read only when they change.
	// +optional
	TrackedConfigVersions map[string]string `json:"trackedConfigVersions,omitempty"`

	// handledRequests are the values of the manual-control annotations
	// (sluice.dev/promote, abort, retry) already acted upon.
	// +optional
	HandledRequests *HandledRequests `json:"handledRequests,omitempty"`

	// lastAnnounced identifies the last transition whose events, event
	// webhooks and alerts were sent. It is written by the status patch that
	// records the transition, and the announcements follow that patch only
	// when it succeeded, so that a conflict and the retry that follows
	// announce a transition once.
	// +optional
	LastAnnounced *AnnouncedTransition `json:"lastAnnounced,omitempty"`

	// source is the Git revision that started the current release, when a
	// GitSync applied it (see ReleaseSource). It is written once per release.
	// +optional
	Source *ReleaseSource `json:"source,omitempty"`

	// releaseStartTime is when the current release (status.revision) started:
	// the lead time and the release duration of delivery figures count from here.
	// +optional
	ReleaseStartTime *metav1.Time `json:"releaseStartTime,omitempty"`

	// firstFailureTime is when the current release first failed a check; the
	// time to restore counts from here to all traffic being back on the primary.
	// +optional
	FirstFailureTime *metav1.Time `json:"firstFailureTime,omitempty"`

	// delivery counts the releases started, promoted and rolled back, and
	// records the last ones (see DeliveryStatus).
	// +optional
	Delivery *DeliveryStatus `json:"delivery,omitempty"`

	// comparisonSamples are the values of the metrics compared with a
	// statistical test (compare.test) at each step of the current release
	// that measured both sides, at most 30 per metric (the newest).
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	ComparisonSamples []ComparisonSamples `json:"comparisonSamples,omitempty"`

	// history is a bounded list of the last analysis steps, newest last;
	// spec.analysis.historyLimit says how many (10 by default).
	// +kubebuilder:validation:MaxItems=50
	// +optional
	// +listType=atomic
	History []CanaryStep `json:"history,omitempty"`
}

// AnnouncedTransition is the key of an announced transition: the revision,
// the phase and the step (its time, weight, iteration and failed checks) it
// led to.
type AnnouncedTransition struct {
	// revision under release.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Revision string `json:"revision,omitempty"`
	// phase reached.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`
	// weight routed to the canary.
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// iteration reached (blue/green, A/B).
	// +optional
	Iteration int32 `json:"iteration,omitempty"`
	// failedChecks of the analysis.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`
	// stepTime is when the last analysis step ran (status.lastStepTime), so
	// that two steps that leave the counters alike (a held check) differ.
	// +optional
	StepTime *metav1.Time `json:"stepTime,omitempty"`
}

// HandledRequests records the manual requests already handled.
type HandledRequests struct {
	// promote is the value of the sluice.dev/promote annotation last acted upon;
	// a different value is a new request.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Promote string `json:"promote,omitempty"`
	// abort is the value of the sluice.dev/abort annotation last acted upon; a
	// different value is a new request.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Abort string `json:"abort,omitempty"`
	// retry is the value of the sluice.dev/retry annotation last acted upon; a
	// different value is a new request.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Retry string `json:"retry,omitempty"`
}

// CanaryStep is one analysis step: when it ran, where traffic stood, and the
// outcome of every check.
type CanaryStep struct {
	// time of the step.
	// +required
	Time metav1.Time `json:"time"`
	// phase after the step.
	// +required
	Phase CanaryPhase `json:"phase"`
	// weight routed to the canary after the step.
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// iteration reached by the step (blue/green, A/B).
	// +optional
	Iteration int32 `json:"iteration,omitempty"`
	// checks are the outcomes of the webhooks and metrics of the step.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	// +listType=atomic
	Checks []CheckResult `json:"checks,omitempty"`
	// message summarises the step.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// CheckOutcome is how a check ended.
//
// +kubebuilder:validation:Enum=Passed;Failed;Error;NoData;Skipped;Inconclusive
type CheckOutcome string

// Check outcomes. Error and NoData count as a failure unless the metric says otherwise.
const (
	CheckPassed  CheckOutcome = "Passed"
	CheckFailed  CheckOutcome = "Failed"
	CheckError   CheckOutcome = "Error"
	CheckNoData  CheckOutcome = "NoData"
	CheckSkipped CheckOutcome = "Skipped"
	// CheckInconclusive is a value outside the metric's thresholdRange but
	// inside its inconclusiveRange: the release pauses for a person.
	CheckInconclusive CheckOutcome = "Inconclusive"
)

// CheckResult is the outcome of one webhook or metric check.
type CheckResult struct {
	// name of the metric or webhook.
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// kind is metric or webhook.
	// +kubebuilder:validation:Enum=metric;webhook
	// +required
	Kind string `json:"kind"`
	// outcome of the check.
	// +required
	Outcome CheckOutcome `json:"outcome"`
	// value measured, for metrics.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Value *string `json:"value,omitempty"`
	// message explains the outcome (the range, the HTTP status, the error).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
	// reason is a machine-readable cause of an Error outcome, e.g.
	// QueryFailed, MultipleSeries, TemplateNotFound, SecretNotFound,
	// UnsupportedProvider, RenderFailed; or InsufficientSamples for a
	// compared metric passed before its statistical test could run.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Reason string `json:"reason,omitempty"`
	// query is the rendered query of a metric, credentials redacted.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Query string `json:"query,omitempty"`
	// held is true when the outcome holds the step (onError: Hold) instead
	// of counting as a failure.
	// +optional
	Held bool `json:"held,omitempty"`
	// dryRun is true when the metric is a dry run: its outcome is recorded
	// and never fails, holds or pauses the release.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// comparedAgainst is the side a compared metric was measured on too
	// (baseline or primary): value is the canary's, comparedValue that side's.
	// +kubebuilder:validation:Enum=baseline;primary
	// +optional
	ComparedAgainst string `json:"comparedAgainst,omitempty"`
	// comparedValue is the value measured on the compared side.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ComparedValue *string `json:"comparedValue,omitempty"`
	// pValue is the p-value of the compared metric's statistical test, when
	// it ran (see compare.test).
	// +kubebuilder:validation:MaxLength=32
	// +optional
	PValue *string `json:"pValue,omitempty"`
}

// GetConditions returns the status conditions.
func (in *Canary) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *Canary) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// ReleaseSource is the Git revision that started a release: the GitSync that
// applied it, the commit and when it was committed and applied. The engine
// records it when the target (or a tracked config) carries the GitSync source
// annotations of the content under release, so a source is never carried to
// a release it did not start.
type ReleaseSource struct {
	// gitSyncName is the name of the GitSync that applied the revision.
	// +kubebuilder:validation:MaxLength=253
	// +required
	GitSyncName string `json:"gitSyncName"`
	// gitSyncNamespace is the namespace of that GitSync.
	// +kubebuilder:validation:MaxLength=63
	// +required
	GitSyncNamespace string `json:"gitSyncNamespace"`
	// revision is the GitSync revision, <ref>@sha1:<commit>.
	// +kubebuilder:validation:MaxLength=512
	// +required
	Revision string `json:"revision"`
	// commitTime is the committer time of the commit.
	// +optional
	CommitTime *metav1.Time `json:"commitTime,omitempty"`
	// appliedTime is when the GitSync applied the revision.
	// +optional
	AppliedTime *metav1.Time `json:"appliedTime,omitempty"`
	// release is the status.revision of the release this source started.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Release string `json:"release"`
}
