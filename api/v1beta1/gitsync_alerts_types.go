package v1beta1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event severities of spec.alerts[].eventSeverity.
const (
	// GitSyncAlertSeverityInfo receives every event of the GitSync.
	GitSyncAlertSeverityInfo = "info"
	// GitSyncAlertSeverityError receives the failures only (and the
	// recovery from a failure it was told about).
	GitSyncAlertSeverityError = "error"
)

// DefaultGitSyncAlertReminderInterval is the default of spec.alerts[].reminderInterval.
const DefaultGitSyncAlertReminderInterval = time.Hour

// GitSyncAlert sends the events of a GitSync (revision applied, sync
// failed, drift corrected, objects pruned, recovered) to an AlertProvider.
// It reads like Flux's Alert, scoped to one GitSync: see docs/gitsync.md,
// "Notifications".
type GitSyncAlert struct {
	// name of the alert, unique within the GitSync; status.alerts records
	// what was last sent under this name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// providerRef names the AlertProvider; the namespace defaults to the GitSync's.
	// +required
	ProviderRef CrossNamespaceReference `json:"providerRef"`

	// eventSeverity is the lowest severity sent: info (default) receives
	// every event, error receives the failures only (and the recovery from
	// a failure it was sent).
	// +kubebuilder:validation:Enum=info;error
	// +kubebuilder:default=info
	// +optional
	EventSeverity string `json:"eventSeverity,omitempty"`

	// inclusionList holds RE2 regular expressions; when set, only the
	// events whose message matches one of them are sent.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.all(r, ''.matches(r) in [true, false])",message="spec.alerts[].inclusionList holds RE2 regular expressions (e.g. '.*BuildFailed.*')"
	// +listType=atomic
	// +optional
	InclusionList []string `json:"inclusionList,omitempty"`

	// exclusionList holds RE2 regular expressions; the events whose
	// message matches one of them are not sent. It wins over inclusionList.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.all(r, ''.matches(r) in [true, false])",message="spec.alerts[].exclusionList holds RE2 regular expressions (e.g. '^Drift')"
	// +listType=atomic
	// +optional
	ExclusionList []string `json:"exclusionList,omitempty"`

	// suspend stops sending to this alert; what was sent before is kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// reminderInterval is how often a failure that persists is sent again:
	// a distinct failure is sent once, then at most once per interval until
	// it changes or the GitSync recovers. At least 1m. Defaults to 1h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="spec.alerts[].reminderInterval must be at least 1m, e.g. 1h"
	// +kubebuilder:default="1h"
	// +optional
	ReminderInterval *metav1.Duration `json:"reminderInterval,omitempty"`
}

// GitSyncAlertStatus records what an alert was last sent about a failure,
// so that a restarted controller neither repeats it nor forgets it.
type GitSyncAlertStatus struct {
	// name of the alert in spec.alerts.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// fingerprint identifies the failure last sent (its reason and its
	// message without volatile parts); empty once the recovery was sent.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`

	// reason is the event reason last sent, e.g. SyncFailed or Recovered.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Reason string `json:"reason,omitempty"`

	// lastSentTime is when the failure of fingerprint was last sent.
	// +optional
	LastSentTime *metav1.Time `json:"lastSentTime,omitempty"`
}
