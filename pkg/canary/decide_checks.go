package canary

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// The outcomes of a step's checks, as the decision reads them: which
// metrics cannot run for their configuration, which held the step and
// which failed it.

// configReasons are the check reasons that only a configuration change fixes.
// They are pkg/metrics' reasons: a provider whose Secret lacks a key
// (InvalidProviderConfig) needs a fix as much as a missing template.
var configReasons = map[string]bool{metrics.ReasonTemplateNotFound: true, metrics.ReasonSecretNotFound: true,
	metrics.ReasonUnsupportedProvider: true, metrics.ReasonRenderFailed: true, metrics.ReasonInvalidProviderConfig: true}

// metricsReady sets the MetricsReady condition from the metric checks of a step.
func (x *decider) metricsReady(checks []sluicev1beta1.CheckResult) {
	var problems []string
	ran := false
	for _, c := range checks {
		if c.Kind != "metric" {
			continue
		}
		ran = true
		if configReasons[c.Reason] {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", c.Name, c.Reason, c.Message))
		}
	}
	if !ran {
		return
	}
	cond := metav1.Condition{Type: sluicev1beta1.MetricsReadyCondition, Status: metav1.ConditionTrue, Reason: "MetricsChecked",
		Message: "Every metric could be queried", ObservedGeneration: x.c.Generation, LastTransitionTime: metav1.NewTime(x.o.Now)}
	if len(problems) > 0 {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "MetricConfigurationInvalid", truncate(strings.Join(problems, "; "), 32768)
	}
	meta.SetStatusCondition(&x.st.Conditions, cond)
}

// heldChecks lists the checks whose error holds the step, as messages.
func heldChecks(checks []sluicev1beta1.CheckResult) []string {
	var out []string
	for _, c := range checks {
		if c.Held {
			out = append(out, fmt.Sprintf("%s %s %s: %s", c.Kind, c.Name, c.Outcome, c.Message))
		}
	}
	return out
}

// failures lists the checks that failed, as messages.
func failures(checks []sluicev1beta1.CheckResult) []string {
	var out []string
	for _, c := range checks {
		// Inconclusive checks pause the release (pause), dry runs never decide.
		if c.Outcome == sluicev1beta1.CheckPassed || c.Outcome == sluicev1beta1.CheckSkipped ||
			c.Outcome == sluicev1beta1.CheckInconclusive || c.Held || c.DryRun {
			continue
		}
		msg := fmt.Sprintf("%s %s %s", c.Kind, c.Name, c.Outcome)
		if c.Message != "" {
			msg += ": " + c.Message
		}
		out = append(out, msg)
	}
	return out
}
