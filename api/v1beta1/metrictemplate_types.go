package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplate is a reusable metric query and the connection to the metrics
// provider that answers it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mt,categories=sluice
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the MetricTemplate: the provider and the query.
	// +required
	Spec MetricTemplateSpec `json:"spec"`
	// status is the observed state of the MetricTemplate.
	// +optional
	Status MetricTemplateStatus `json:"status,omitempty"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// MetricTemplateSpec is the desired state of a MetricTemplate.
type MetricTemplateSpec struct {
	// provider answers the query.
	// +required
	Provider MetricTemplateProvider `json:"provider"`

	// query is a Go text/template rendered with the functions name, namespace,
	// target, service, ingress, route, interval and variables.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	// +required
	Query string `json:"query"`
}

// MetricTemplateProvider is the metrics backend and how to reach it.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'web' || has(self.address)",message="the web provider needs spec.provider.address: the URL it requests"
// +kubebuilder:validation:XValidation:rule="!has(self.method) || self.type == 'web'",message="spec.provider.method is for the web provider only"
// +kubebuilder:validation:XValidation:rule="!has(self.body) || (self.type == 'web' && has(self.method) && self.method == 'POST')",message="spec.provider.body needs type web and method POST"
type MetricTemplateProvider struct {
	// type of the provider. Flagger's names are all accepted; a Canary using a
	// type this controller cannot query is Stalled with a reason.
	// web is Argo Rollouts' web metric: an HTTP request to address whose JSON
	// answer the query (a JSONPath) reads.
	// +kubebuilder:validation:Enum=prometheus;influxdb;datadog;externalmetrics;stackdriver;cloudwatch;newrelic;graphite;dynatrace;keptn;splunk;web
	// +required
	Type string `json:"type"`

	// address of the provider's API, e.g. http://prometheus.monitoring:9090.
	// For the web provider it is the URL requested; its path and query (not
	// its host) are rendered as templates like the query (write {{target}}
	// without spaces).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="spec.provider.address must be an http:// or https:// URL"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#\\\\s]+([/?#]\\\\S*)?$')",message="spec.provider.address must name a host and hold no spaces, e.g. https://host:port/path"
	// +optional
	Address string `json:"address,omitempty"`

	// headers are added to every request to the provider. Credentials belong
	// in secretRef, not here.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`

	// secretRef names a Secret in the template's namespace with the
	// credentials (for Prometheus: token, or username and password).
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.provider.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// region of the provider (CloudWatch).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]+$`
	// +optional
	Region string `json:"region,omitempty"`

	// insecureSkipVerify disables verification of the provider's certificate.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// method of the web provider's request: GET (the default) or POST.
	// +kubebuilder:validation:Enum=GET;POST
	// +optional
	Method string `json:"method,omitempty"`

	// body of the web provider's POST request, rendered as a template like
	// the query; a body that is a JSON document is sent as application/json.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	// +optional
	Body string `json:"body,omitempty"`
}

// MetricTemplateStatus is the observed state of a MetricTemplate.
type MetricTemplateStatus struct {
	// conditions are the latest observations of the MetricTemplate's state.
	// Sluice does not write them at present.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&MetricTemplate{}, &MetricTemplateList{})
}
