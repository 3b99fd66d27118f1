package cli

import (
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Knative Service targets (Flagger's `targetRef: serving.knative.dev/v1
// Service` with `provider: knative`) convert as they are: Sluice's engine
// releases them without a primary clone or generated Services, as Flagger
// does (docs/canary.md "Knative Service targets"). What a Knative release
// cannot do is reported here with the condition the Canary would get.

// knativeGroup is the API group of the Knative Service.
const knativeGroup = "serving.knative.dev"

// knativeVersion is the only Knative Service version the knative router reads.
const knativeVersion = knativeGroup + "/v1"

// knativeTarget reports the findings of a Canary whose target is a Knative
// Service, and tells whether the target is one (then the generic "kind not
// released" warning does not apply).
func (r *reporter) knativeTarget(c *sluicev1beta1.Canary) bool {
	t := c.Spec.TargetRef
	if t.Kind != "Service" || !strings.HasPrefix(t.APIVersion, knativeGroup+"/") {
		return false
	}
	if t.APIVersion != knativeVersion {
		r.warn(r.at("spec", "targetRef", "apiVersion"), "targetRef apiVersion %s is not read by the knative router (Stalled, UnsupportedFeature): use %s", t.APIVersion, knativeVersion)
	}
	if c.Spec.Provider != "knative" {
		r.warn(r.at("spec", "provider"), "a Knative Service target is released by provider knative only (Stalled, UnsupportedTarget): set spec.provider: knative")
	}
	if c.Spec.Service.Port == 0 {
		// Flagger's Knative guide has no spec.service: Flagger ignored it
		// for Knative, Sluice's API requires it for every Canary.
		r.warn(r.at("spec"), "rejected by the API: spec.service.port is required, also for a Knative target (it is not used: no Service is generated); add service: {port: 80}")
	}
	if a := c.Spec.Analysis; a != nil && a.Iterations > 0 && len(a.Match) == 0 {
		r.warn(r.at("spec", "analysis", "iterations"), "blue/green (analysis.iterations) is not supported for a Knative Service (Stalled, UnsupportedTarget): use stepWeight or stepWeights")
	}
	if c.Spec.AutoscalerRef != nil {
		r.warn(r.at("spec", "autoscalerRef"), "a Knative Service is scaled by Knative (Stalled, UnsupportedTarget): remove spec.autoscalerRef")
	}
	if a := c.Spec.Analysis; a != nil && c.Spec.Provider == "knative" {
		for i, m := range a.Metrics {
			if (m.Name == "request-success-rate" || m.Name == "request-duration") && m.TemplateRef == nil && m.Query == "" {
				r.warn(r.at("spec", "analysis", "metrics", i), "provider knative has no builtin metric %s (the check fails, UnsupportedProvider): measure it with a MetricTemplate (templateRef) over your Knative metrics", m.Name)
			}
		}
	}
	if c.Spec.Provider == "knative" {
		r.note(r.at("spec", "targetRef"), "Sluice records the primary revision in the annotation sluice.dev/primary-revision (Flagger: flagger.app/primary-revision), set to the latest created revision when the Canary is first reconciled: switch from Flagger between releases")
	}
	return true
}
