package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProvider is a chat or webhook target for release notifications.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ap,categories=sluice
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the AlertProvider: where and how notifications are sent.
	// +required
	Spec AlertProviderSpec `json:"spec"`
	// status is the observed state of the AlertProvider.
	// +optional
	Status AlertProviderStatus `json:"status,omitempty"`
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

// AlertProviderSpec is the desired state of an AlertProvider.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="an AlertProvider needs spec.address or spec.secretRef (a Secret whose key address holds the webhook URL)"
type AlertProviderSpec struct {
	// type of the provider.
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat;generic
	// +required
	Type string `json:"type"`

	// channel to post to. Defaults to general.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Channel string `json:"channel,omitempty"`

	// username the messages are posted as. Defaults to sluice.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Username string `json:"username,omitempty"`

	// address is the webhook URL. Prefer secretRef: a webhook URL is a credential.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="spec.address must be an http:// or https:// URL"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#\\\\s]+([/?#]\\\\S*)?$')",message="spec.address must name a host and hold no spaces, e.g. https://host:port/path"
	// +optional
	Address string `json:"address,omitempty"`

	// proxy is the HTTP(S) proxy used to reach the provider.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="spec.proxy must be an http:// or https:// URL"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#\\\\s]+([/?#]\\\\S*)?$')",message="spec.proxy must name a host and hold no spaces, e.g. https://host:port/path"
	// +optional
	Proxy string `json:"proxy,omitempty"`

	// secretRef names a Secret in the provider's namespace whose key address
	// overrides spec.address and whose optional key token is sent as a bearer token.
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// AlertProviderStatus is the observed state of an AlertProvider.
type AlertProviderStatus struct {
	// conditions are the latest observations of the AlertProvider's state. Sluice
	// does not write them at present.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&AlertProvider{}, &AlertProviderList{})
}
