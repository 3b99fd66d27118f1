package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PipelineAlertRecordLimit bounds status.alerts[].sent.
const PipelineAlertRecordLimit = 8

// PipelineAlert sends the events of a Pipeline's stages (a bundle failed,
// a write failed, a bundle waits for approval, a bundle committed or
// rolled back, recovered) to an AlertProvider: see docs/promotion.md, "Alerts".
type PipelineAlert struct {
	// name of the alert, unique within the Pipeline.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// providerRef names the AlertProvider; the namespace defaults to the Pipeline's.
	// +required
	ProviderRef CrossNamespaceReference `json:"providerRef"`

	// eventSeverity is the lowest severity sent: info (default) receives
	// every event, error receives the failures and the recoveries only.
	// +kubebuilder:validation:Enum=info;error
	// +kubebuilder:default=info
	// +optional
	EventSeverity string `json:"eventSeverity,omitempty"`
}

// PipelineAlertRecord records the facts of a stage that were sent to the
// alerts, so that a restarted controller never sends them again.
type PipelineAlertRecord struct {
	// stage is the name of the stage.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Stage string `json:"stage"`

	// sent are the keys of the stage's current facts already sent, e.g.
	// "Failed/<bundle id>/VerificationFailed" or "Committed/<bundle id>/<commit>".
	// A fact no longer true is dropped, so that it is sent again if it comes back.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=atomic
	// +optional
	Sent []string `json:"sent,omitempty"`

	// lastSentTime is when an event of this stage was last sent.
	// +optional
	LastSentTime *metav1.Time `json:"lastSentTime,omitempty"`
}
