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
	// ReconcilingCondition is True while a release is in progress.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when the Canary cannot make progress until its
	// spec or the cluster is fixed (bad reference, unknown provider, ...).
	StalledCondition = "Stalled"
	// PromotedCondition is True when the revision in lastAppliedSpec has been
	// promoted to the primary.
	PromotedCondition = "Promoted"
)

// CanaryStatus is the observed state of a Canary. All release progress lives
// here, so a restarted controller continues where the last one stopped.
type CanaryStatus struct {
	// Conditions are Ready, Reconciling, Stalled and Promoted.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase of the current release.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// FailedChecks is the number of failed checks of the current analysis.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`

	// CanaryWeight is the traffic weight routed to the canary.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// Iterations is the number of analysis steps done in the current release.
	// +optional
	Iterations int32 `json:"iterations,omitempty"`

	// TrackedConfigs are the checksums of the ConfigMaps and Secrets the target
	// uses, keyed configmap/<name> or secret/<name>.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`

	// LastAppliedSpec is the hash of the target's pod template last seen.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// LastPromotedSpec is the hash of the pod template last promoted.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// LastTrackedRevision is kept for compatibility with Flagger.
	// +optional
	LastTrackedRevision string `json:"lastTrackedRevision,omitempty"`

	// LastTransitionTime is when the phase last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// SessionAffinityCookie is the canary cookie of the current release.
	// +optional
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`

	// PrimarySessionAffinityCookie is the primary cookie of the current release.
	// +optional
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`

	// PreviousSessionAffinityCookie is the canary cookie of the previous
	// release, expired on the clients after promotion.
	// +optional
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`
}

// GetConditions returns the status conditions.
func (in *Canary) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *Canary) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }
