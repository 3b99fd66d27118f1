package v1beta1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PipelineReasonWaitingForWebhook is the gate reason of a bundle that a
// stage's webhook gate has not let through yet: no 2xx answer for it.
const PipelineReasonWaitingForWebhook = "WaitingForWebhook"

// WebhookGatePhase is the phase of the payload of a webhook gate call.
const WebhookGatePhase = "Promoting"

// PipelineWebhook is a stage's webhook gate: before automation writes a
// bundle to the stage, Sluice POSTs Flagger's webhook payload to url (name
// and namespace of the Pipeline, phase Promoting, checksum and revision the
// bundle id, type confirm-promotion, metadata with the stage, the bundle and
// its images); an HTTP 2xx lets that bundle through, anything else keeps it
// waiting and is asked again at the poll interval. The Sluice load tester's
// /gate/check works as is.
type PipelineWebhook struct {
	// name of the webhook, for status and events, e.g. release-gate.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// url of the webhook: https://, or http:// (a load tester inside the
	// cluster; sign with secretRef), e.g. http://sluice-loadtester.test/gate/check.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="spec.stages[].webhook.url must be an http:// or https:// URL, e.g. http://sluice-loadtester.test/gate/check"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#@\\\\s]+([/?#].*)?$')",message="spec.stages[].webhook.url must name a host and hold no spaces or user info, e.g. http://sluice-loadtester.test/gate/check"
	// +required
	URL string `json:"url"`

	// timeout of one call, e.g. 5s, at most 1m: the Pipeline's reconcile
	// waits for the answer. Defaults to 10s.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('1m')",message="spec.stages[].webhook.timeout must be above 0 and at most 1m, e.g. 10s"
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// metadata is sent in the payload's metadata, beside stage, bundle,
	// pipeline and image.<source> (which take precedence).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// secretRef names a Secret in the Pipeline's namespace whose key "key"
	// signs the call with HMAC-SHA256 in the X-Sluice-Signature header, as
	// Canary webhooks are signed (the load tester's hmacKey).
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.stages[].webhook.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// CanaryWebhook is the webhook gate as the webhooks client calls it: a
// confirm-promotion hook with no retries (the gate asks again at the poll
// interval instead).
func (w *PipelineWebhook) CanaryWebhook() CanaryWebhook {
	return CanaryWebhook{
		Type: WebhookConfirmPromotion, Name: w.Name, URL: w.URL, Timeout: w.Timeout,
		Metadata: w.Metadata, SecretRef: w.SecretRef,
	}
}

// TimeoutOrDefault is the timeout of one call of the webhook gate.
func (w *PipelineWebhook) TimeoutOrDefault() time.Duration {
	h := w.CanaryWebhook()
	return h.TimeoutOrDefault()
}
