package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Builtin metric names, measured against the Canary's Prometheus with queries
// that depend on the provider.
const (
	MetricRequestSuccessRate = "request-success-rate"
	MetricRequestDuration    = "request-duration"
)

// Webhook types, called at the points of a release that their names give.
const (
	WebhookConfirmRollout         = "confirm-rollout"
	WebhookPreRollout             = "pre-rollout"
	WebhookRollout                = "rollout"
	WebhookConfirmTrafficIncrease = "confirm-traffic-increase"
	WebhookConfirmPromotion       = "confirm-promotion"
	WebhookPostRollout            = "post-rollout"
	WebhookRollback               = "rollback"
	WebhookEvent                  = "event"
)

// CanaryAnalysis is the validation run for each new revision. Its shape picks
// the strategy, as in Flagger: iterations with match is A/B testing,
// iterations alone is blue/green (mirrored when mirror is set), and
// stepWeight or stepWeights is a progressive canary.
//
// +kubebuilder:validation:XValidation:rule="(has(self.iterations) && self.iterations > 0) || has(self.stepWeight) || has(self.stepWeights)",message="spec.analysis needs a strategy: set iterations (blue/green, or A/B with match) or stepWeight/stepWeights (progressive canary)"
// +kubebuilder:validation:XValidation:rule="!(has(self.stepWeight) && has(self.stepWeights))",message="spec.analysis takes stepWeight or stepWeights, not both"
// +kubebuilder:validation:XValidation:rule="!(has(self.iterations) && self.iterations > 0 && (has(self.stepWeight) || has(self.stepWeights)))",message="spec.analysis.iterations (blue/green, A/B) and stepWeight/stepWeights (progressive canary) select different strategies: set one of them"
// +kubebuilder:validation:XValidation:rule="!has(self.maxWeight) || !has(self.stepWeight) || self.maxWeight >= self.stepWeight",message="spec.analysis.maxWeight must be greater than or equal to stepWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.match) || size(self.match) == 0 || (has(self.iterations) && self.iterations > 0)",message="spec.analysis.match (A/B testing) requires spec.analysis.iterations greater than 0"
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorWeight) || (has(self.mirror) && self.mirror)",message="spec.analysis.mirrorWeight has no effect without spec.analysis.mirror: true: set mirror or remove mirrorWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeightPromotion) || !has(self.iterations) || self.iterations == 0",message="spec.analysis.stepWeightPromotion applies to the progressive canary strategy only: remove it, or replace iterations with stepWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.baseline) || !self.baseline || has(self.stepWeight) || has(self.stepWeights)",message="spec.analysis.baseline needs the progressive canary strategy (stepWeight or stepWeights): the baseline receives the canary's weight"
// +kubebuilder:validation:XValidation:rule="!has(self.baseline) || !self.baseline || (has(self.stepWeights) ? self.stepWeights[size(self.stepWeights) - 1] <= 50 : (has(self.maxWeight) && self.maxWeight <= 50))",message="spec.analysis.baseline routes the canary's weight to the baseline too, so the canary's maximum weight (maxWeight, or the last stepWeights entry) must be set to 50 or less"
// +kubebuilder:validation:XValidation:rule="!has(self.metrics) || !self.metrics.exists(m, has(m.compare) && m.compare.against == 'baseline') || (has(self.baseline) && self.baseline)",message="a metric compared against: baseline needs spec.analysis.baseline: true (Sluice then runs baseline pods of the primary's version); set it, or compare against: primary"
type CanaryAnalysis struct {
	// interval between analysis steps, e.g. 1m or 30s. Defaults to 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.analysis.interval must be greater than 0, e.g. 1m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// iterations is the number of analysis steps of a blue/green or A/B release.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Iterations int32 `json:"iterations,omitempty"`

	// threshold is the number of failed checks before rollback. Defaults to 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Threshold int32 `json:"threshold,omitempty"`

	// maxWeight is the canary weight at which promotion starts. Defaults to 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxWeight int32 `json:"maxWeight,omitempty"`

	// stepWeight is the weight added to the canary at each step.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeight int32 `json:"stepWeight,omitempty"`

	// stepWeights is an explicit, strictly ascending ladder of canary weights;
	// its last element is the maximum weight.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self.isSorted() && self.all(w, self.filter(v, v == w).size() == 1)",message="spec.analysis.stepWeights must be strictly ascending, e.g. [1, 5, 10, 50]"
	// +optional
	// +listType=atomic
	StepWeights []int32 `json:"stepWeights,omitempty"`

	// stepWeightPromotion is the weight moved back to the primary at each
	// promotion step; 0 moves it all at once.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeightPromotion int32 `json:"stepWeightPromotion,omitempty"`

	// baseline runs a baseline during each release: a Deployment
	// <target>-baseline with the primary's pod template (the current
	// version) and as many replicas as the canary, behind a Service
	// <apex>-baseline, that receives the same traffic weight as the canary
	// (the router splits primary / baseline / canary), so that metrics with
	// compare.against: baseline measure both under the same load and age. It
	// needs the progressive canary strategy, a Deployment target and a
	// router that splits three ways (gatewayapi, istio, traefik); the
	// baseline is deleted after promotion or rollback.
	// +optional
	Baseline bool `json:"baseline,omitempty"`

	// mirror mirrors traffic to the canary: for the whole analysis with
	// iterations (blue/green), or for one step before the first weight shift.
	// +optional
	Mirror bool `json:"mirror,omitempty"`

	// mirrorWeight is the percentage of traffic mirrored. Defaults to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorWeight int32 `json:"mirrorWeight,omitempty"`

	// primaryReadyThreshold is the percentage of primary pods that must be
	// available for the primary to be ready. Defaults to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PrimaryReadyThreshold *int32 `json:"primaryReadyThreshold,omitempty"`

	// canaryReadyThreshold is the percentage of canary pods that must be
	// available for the canary to be ready. Defaults to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryReadyThreshold *int32 `json:"canaryReadyThreshold,omitempty"`

	// match are the A/B testing conditions: matching requests go to the canary.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	// +listType=atomic
	Match []HTTPMatchRequest `json:"match,omitempty"`

	// sessionAffinity keeps users who reached the canary on it, by cookie.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`

	// metrics are the checks run at each step.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(m, self.exists_one(o, o.name == m.name))",message="spec.analysis.metrics names must be unique: each names a check in the status"
	// +optional
	// +listType=atomic
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// webhooks are called before, during and after the release.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(w, self.exists_one(o, o.name == w.name))",message="spec.analysis.webhooks names must be unique: each names a check in the status"
	// +optional
	// +listType=atomic
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// successLimit promotes the revision after this many consecutive
	// passing analysis steps (Argo Rollouts' consecutiveSuccessLimit), even
	// before the last weight or iteration: whichever comes first ends the
	// analysis. Unset, only the weights or iterations do (as in Flagger).
	// See docs/canary.md for what counts as a passing step.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	SuccessLimit int32 `json:"successLimit,omitempty"`

	// historyLimit is the number of analysis steps status.history keeps
	// (newest last). Defaults to 10. Every step is also recorded in an
	// event (the WeightIncreased or PromotionStep event that follows it, or
	// a StepCompleted event), so older steps are not lost when it rotates.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	// +optional
	HistoryLimit int32 `json:"historyLimit,omitempty"`

	// alerts send release notifications through AlertProviders.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(o, o.name == a.name))",message="spec.analysis.alerts names must be unique"
	// +optional
	// +listType=atomic
	Alerts []CanaryAlert `json:"alerts,omitempty"`
}

// SessionAffinity configures cookie-based stickiness to the canary.
//
// +kubebuilder:validation:XValidation:rule="!has(self.primaryCookieName) || self.primaryCookieName != self.cookieName",message="spec.analysis.sessionAffinity.primaryCookieName must differ from cookieName"
type SessionAffinity struct {
	// cookieName is the name of the cookie that pins a user to the canary.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +required
	CookieName string `json:"cookieName"`
	// primaryCookieName is the name of the cookie that pins a user to the primary.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`
	// maxAge of the cookie in seconds.
	// +kubebuilder:default=86400
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxAge int32 `json:"maxAge,omitempty"`
	// domain is the Domain attribute of the session cookies Sluice sets.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Domain string `json:"domain,omitempty"`
	// path is the Path attribute of the session cookies Sluice sets.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Path string `json:"path,omitempty"`
	// httpOnly adds the HttpOnly attribute to the session cookies: scripts in
	// the browser cannot read them.
	// +optional
	HTTPOnly bool `json:"httpOnly,omitempty"`
	// secure adds the Secure attribute to the session cookies: browsers send
	// them over HTTPS only.
	// +optional
	Secure bool `json:"secure,omitempty"`
	// sameSite is the SameSite attribute of the session cookies: Strict, Lax or None.
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`
	// partitioned adds the Partitioned attribute to the session cookies
	// (cookies partitioned by top-level site).
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
}

// CanaryMetric is one check of the analysis: a builtin metric, a
// MetricTemplate, or an inline Prometheus query, compared with a range.
//
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.templateRef) || has(self.query)",message="a metric must name a builtin (request-success-rate, request-duration) or set templateRef or query"
// +kubebuilder:validation:XValidation:rule="!(has(self.templateRef) && has(self.query))",message="a metric takes templateRef or query, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.inconclusiveRange) || has(self.thresholdRange) || has(self.threshold)",message="a metric's inconclusiveRange needs a thresholdRange (the values that pass): a value outside both fails"
type CanaryMetric struct {
	// name of the metric; request-success-rate and request-duration are builtins.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// interval is the range of the query, e.g. 1m. Defaults to 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="a metric interval must be greater than 0, e.g. 1m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// threshold is the maximum accepted value (deprecated: use thresholdRange).
	// +optional
	Threshold float64 `json:"threshold,omitempty"`

	// thresholdRange is the accepted range of the value.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`

	// inconclusiveRange is a range of values that neither pass nor fail: a
	// value outside thresholdRange but inside inconclusiveRange ends the
	// check Inconclusive, which pauses the release (no traffic change, no
	// failure counted) until `kubectl sluice promote` or `abort`, for at most
	// progressDeadlineSeconds. A value inside thresholdRange passes even when
	// the ranges overlap.
	// +optional
	InconclusiveRange *CanaryInconclusiveRange `json:"inconclusiveRange,omitempty"`

	// dryRun measures and records the metric (status history, events,
	// metrics) without letting its outcome fail, hold or pause the release;
	// the step's message says what it would have decided.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// initialDelay is how long after the start of the release the metric is
	// first checked, e.g. 5m; before, its check is recorded as Skipped.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	InitialDelay *metav1.Duration `json:"initialDelay,omitempty"`

	// query is an inline Prometheus query (deprecated: use templateRef).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	// +optional
	Query string `json:"query,omitempty"`

	// templateRef names a MetricTemplate; the namespace defaults to the Canary's.
	// +optional
	TemplateRef *CrossNamespaceReference `json:"templateRef,omitempty"`

	// templateVariables are passed to the template as {{ variables.<key> }}.
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`

	// noData says what a query that returns no series (or NaN) counts as:
	// Fail (default, as in Flagger), Pass, or Skip (the metric is left out of
	// this step).
	// +kubebuilder:validation:Enum=Fail;Pass;Skip
	// +optional
	NoData string `json:"noData,omitempty"`

	// onError says what a failed query (unreachable server, timeout, bad
	// response, several series) counts as: Fail (default) or Hold (the step
	// is repeated at the next interval without counting a failure; the
	// release never advances on an error).
	// +kubebuilder:validation:Enum=Fail;Hold
	// +optional
	OnError string `json:"onError,omitempty"`

	// compare judges the metric against the same query measured on the
	// baseline or the primary rather than against fixed values only (see
	// CanaryMetricCompare and docs/metrics.md). A thresholdRange may still
	// be set: it is then an absolute guard the canary must also meet.
	// +optional
	Compare *CanaryMetricCompare `json:"compare,omitempty"`
}

// Metric outcome policies.
const (
	PolicyFail = "Fail"
	PolicyPass = "Pass"
	PolicySkip = "Skip"
	PolicyHold = "Hold"
)

// CanaryThresholdRange is an inclusive range of accepted values.
//
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="thresholdRange.min must be less than or equal to thresholdRange.max"
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange needs min, max or both: an empty range accepts any value"
type CanaryThresholdRange struct {
	// min is the lowest accepted value (inclusive); unset, there is no lower bound.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// max is the highest accepted value (inclusive); unset, there is no upper bound.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CanaryInconclusiveRange is an inclusive range of values that are neither
// accepted nor rejected.
//
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="inconclusiveRange.min must be less than or equal to inconclusiveRange.max"
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="inconclusiveRange needs min, max or both: an empty range would make every failing value inconclusive"
type CanaryInconclusiveRange struct {
	// min is the lowest inconclusive value (inclusive); unset, there is no lower bound.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// max is the highest inconclusive value (inclusive); unset, there is no upper bound.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CrossNamespaceReference names an object, optionally in another namespace.
type CrossNamespaceReference struct {
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// namespace of the object. Defaults to the Canary's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CanaryWebhook is an HTTP call made at a point of the release.
type CanaryWebhook struct {
	// type is when the webhook is called; empty means rollout.
	// +kubebuilder:validation:Enum="";confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
	// +optional
	Type string `json:"type,omitempty"`

	// name of the webhook.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// url of the webhook (http or https).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="webhook url must be an http:// or https:// URL, e.g. http://loadtester.test/"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#@\\\\s]+([/?#].*)?$')",message="webhook url must name a host and hold no spaces or user info, e.g. http://loadtester.test/"
	// +required
	URL string `json:"url"`

	// muteAlert keeps failures of this webhook out of the alerts.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`

	// timeout of one call, e.g. 30s. Defaults to 10s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="webhook timeout must be greater than 0, e.g. 1m"
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Timeout string `json:"timeout,omitempty"`

	// retries on connection errors, 5xx and 429.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries int32 `json:"retries,omitempty"`

	// disableTLS skips verification of the server certificate.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`

	// metadata is sent in the payload.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// secretRef names a Secret in the Canary's namespace whose key "key"
	// signs the payload with HMAC-SHA256 in the X-Sluice-Signature header
	// (see docs/webhooks.md for how to verify it).
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// CanaryAlert sends notifications to an AlertProvider.
type CanaryAlert struct {
	// name of the alert.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// severity is the lowest severity sent: info (default), warn or error.
	// +kubebuilder:validation:Enum="";info;warn;error
	// +optional
	Severity string `json:"severity,omitempty"`
	// providerRef names the AlertProvider; the namespace defaults to the Canary's.
	// +required
	ProviderRef CrossNamespaceReference `json:"providerRef"`
}
