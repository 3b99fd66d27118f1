package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider names accepted in spec.provider. Flagger's list is kept whole so that
// a Flagger manifest is accepted unchanged; which of them this controller can
// drive is decided by the router registry, and a Canary naming one it lacks is
// Stalled with a reason that lists the supported providers.
const (
	ProviderIstio            = "istio"
	ProviderGatewayAPI       = "gatewayapi"
	ProviderGatewayAPIV1     = "gatewayapi:v1"
	ProviderGatewayAPIV1Beta = "gatewayapi:v1beta1"
	ProviderTraefik          = "traefik"
	ProviderKubernetes       = "kubernetes"
)

// Canary describes how a workload is released: the target, the Services and
// routes generated for it, and the analysis that decides promotion or rollback.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cnry,categories=all;sluice
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`,priority=1
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.analysis.interval`,priority=1
// +kubebuilder:printcolumn:name="Mirror",type=boolean,JSONPath=`.spec.analysis.mirror`,priority=1
// +kubebuilder:printcolumn:name="StepWeight",type=integer,JSONPath=`.spec.analysis.stepWeight`,priority=1
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.analysis.stepWeights`,priority=1
// +kubebuilder:printcolumn:name="MaxWeight",type=integer,JSONPath=`.spec.analysis.maxWeight`,priority=1
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,JSONPath=`.status.lastTransitionTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`,priority=1
type Canary struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the Canary: the target, its Services and the analysis.
	// +required
	Spec CanarySpec `json:"spec"`
	// status is the observed state of the Canary, written by Sluice.
	// +optional
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

// CanarySpec is the desired state of a Canary.
//
// +kubebuilder:validation:XValidation:rule="!has(self.analysis.sessionAffinity) || !has(self.analysis.iterations) || self.analysis.iterations == 0",message="spec.analysis.sessionAffinity works with the progressive canary strategy only: remove analysis.iterations or analysis.sessionAffinity"
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind != 'StatefulSet' || !has(self.analysis.mirror) || !self.analysis.mirror",message="spec.analysis.mirror is not supported for a StatefulSet target: mirrored requests would apply every write twice; use a progressive canary, blue/green or A/B strategy"
// +kubebuilder:validation:XValidation:rule="!has(self.analysis.baseline) || !self.analysis.baseline || self.targetRef.kind == 'Deployment'",message="spec.analysis.baseline needs a Deployment target: the baseline runs as many replicas as the canary"
type CanarySpec struct {
	// provider is the traffic management provider for this Canary (istio,
	// gatewayapi, traefik, kubernetes, ...). It overrides the controller's
	// --default-provider. The kubernetes provider has no router and releases by
	// blue/green through the apex Service selector.
	// +kubebuilder:validation:Enum=apisix;appmesh;"appmesh:v1beta2";contour;gatewayapi;"gatewayapi:v1";"gatewayapi:v1beta1";gloo;istio;knative;kubernetes;kuma;linkerd;nginx;osm;skipper;"smi:v1alpha1";"smi:v1alpha2";"smi:v1alpha3";traefik
	// +optional
	Provider string `json:"provider,omitempty"`

	// metricsServer is the address of the Prometheus server used by the builtin
	// metrics; it overrides the controller's --metrics-server.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="spec.metricsServer must be an http:// or https:// URL, e.g. http://prometheus.monitoring:9090"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#\\\\s]+([/?#]\\\\S*)?$')",message="spec.metricsServer must name a host and hold no spaces, e.g. http://prometheus.monitoring:9090"
	// +optional
	MetricsServer string `json:"metricsServer,omitempty"`

	// targetRef is the workload being released: a Deployment, a DaemonSet or a
	// StatefulSet in the Canary's namespace (kind Service is accepted for
	// compatibility).
	// +required
	TargetRef TargetReference `json:"targetRef"`

	// autoscalerRef is the HorizontalPodAutoscaler or KEDA ScaledObject of the
	// target; a copy is made for the primary.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// ingressRef is the Ingress cloned for ingress-based providers (nginx, skipper).
	// +kubebuilder:validation:XValidation:rule="self.kind == 'Ingress'",message="spec.ingressRef.kind must be Ingress"
	// +optional
	IngressRef *ObjectReference `json:"ingressRef,omitempty"`

	// routeRef is the APISIX route cloned for the apisix provider.
	// +kubebuilder:validation:XValidation:rule="self.kind == 'ApisixRoute'",message="spec.routeRef.kind must be ApisixRoute"
	// +optional
	RouteRef *ObjectReference `json:"routeRef,omitempty"`

	// upstreamRef is the Gloo Upstream whose settings are copied for the gloo provider.
	// +kubebuilder:validation:XValidation:rule="self.kind == 'Upstream'",message="spec.upstreamRef.kind must be Upstream"
	// +optional
	UpstreamRef *ObjectReference `json:"upstreamRef,omitempty"`

	// service describes the Services (<name>, <name>-primary, <name>-canary)
	// and the routing objects generated for the target.
	// +required
	Service CanaryService `json:"service"`

	// analysis is the validation process run for each new revision.
	// +required
	Analysis *CanaryAnalysis `json:"analysis"`

	// progressDeadlineSeconds is how long the canary or the primary may go
	// without becoming ready before the release fails. Defaults to 600.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// skipAnalysis promotes a new revision as soon as it is ready, without analysis.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// revertOnDeletion also restores the routing objects when the Canary is
	// deleted while its target cannot be served (missing). Whatever its value,
	// Sluice serves the target again when a Canary is deleted (target scaled
	// up, apex Service restored, routing objects restored or released to the apex).
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// suspend pauses all releases of this Canary.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// TargetReference names the workload a Canary releases.
//
// +kubebuilder:validation:XValidation:rule="self.kind == 'Service' || self.apiVersion == 'apps/v1'",message="spec.targetRef.apiVersion must be apps/v1 for a Deployment, a DaemonSet or a StatefulSet"
type TargetReference struct {
	// apiVersion of the target, e.g. apps/v1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	APIVersion string `json:"apiVersion"`
	// kind of the target: Deployment, DaemonSet, StatefulSet, or Service for a Knative Service (apiVersion serving.knative.dev/v1, provider knative).
	// +kubebuilder:validation:Enum=Deployment;DaemonSet;StatefulSet;Service
	// +required
	Kind string `json:"kind"`
	// name of the target in the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=245
	// +required
	Name string `json:"name"`
}

// ObjectReference names an object of a given kind, optionally in another namespace.
type ObjectReference struct {
	// apiVersion of the referent.
	// +kubebuilder:validation:MaxLength=253
	// +required
	APIVersion string `json:"apiVersion"`
	// kind of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Kind string `json:"kind"`
	// name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// namespace of the referent; defaults to the Canary's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// AutoscalerReference names the autoscaler of the target.
//
// +kubebuilder:validation:XValidation:rule="!has(self.primaryScalerReplicas) || !has(self.primaryScalerReplicas.minReplicas) || !has(self.primaryScalerReplicas.maxReplicas) || self.primaryScalerReplicas.minReplicas <= self.primaryScalerReplicas.maxReplicas",message="spec.autoscalerRef.primaryScalerReplicas.minReplicas must not exceed maxReplicas"
type AutoscalerReference struct {
	// apiVersion of the autoscaler, e.g. autoscaling/v2 or keda.sh/v1alpha1.
	// +kubebuilder:validation:MaxLength=253
	// +required
	APIVersion string `json:"apiVersion"`
	// kind of the autoscaler.
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	// +required
	Kind string `json:"kind"`
	// name of the autoscaler in the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=245
	// +required
	Name string `json:"name"`
	// primaryScalerQueries replaces, for the primary's ScaledObject, the query
	// of the KEDA trigger with the given name.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`
	// primaryScalerReplicas overrides the primary autoscaler's bounds.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas are autoscaler bounds.
type ScalerReplicas struct {
	// minReplicas replaces the minimum number of replicas of the primary's
	// HorizontalPodAutoscaler (otherwise copied from the target's).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// maxReplicas replaces the maximum number of replicas of the primary's
	// HorizontalPodAutoscaler (otherwise copied from the target's).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

func init() {
	SchemeBuilder.Register(&Canary{}, &CanaryList{})
}
