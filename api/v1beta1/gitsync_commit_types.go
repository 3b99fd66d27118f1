package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GitSyncCommit describes a commit for people: the dashboard shows which
// commit a GitSync applied and which one started a release.
type GitSyncCommit struct {
	// subject is the first line of the commit message, cut at 200 characters.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Subject string `json:"subject,omitempty"`
	// author is the author's name (never the e-mail address, which is
	// personal data the status does not need).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Author string `json:"author,omitempty"`
	// time is the committer time.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}
