package canary

import (
	"fmt"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// reasonStepCompleted is the reason of the event that exports a step of the
// analysis, so that a step outlives status.history's rotation.
const reasonStepCompleted = "StepCompleted"

// newSteps are the steps the status patch just written added to the
// history: those newer than every step the previous status held.
func newSteps(prev, now *sluicev1beta1.CanaryStatus) []sluicev1beta1.CanaryStep {
	var last *sluicev1beta1.CanaryStep
	if n := len(prev.History); n > 0 {
		last = &prev.History[n-1]
	}
	var out []sluicev1beta1.CanaryStep
	for _, s := range now.History {
		if last == nil || s.Time.After(last.Time.Time) {
			out = append(out, s)
		}
	}
	return out
}

// stepEvent is the StepCompleted event of a step: where traffic stood, the
// step's message and every check with its outcome, value and range (the
// check's message names the range).
func stepEvent(s sluicev1beta1.CanaryStep) Event {
	var b strings.Builder
	fmt.Fprintf(&b, "Step %s: phase %s, weight %d%%, iteration %d: %s", s.Time.UTC().Format("2006-01-02T15:04:05Z"), s.Phase, s.Weight, s.Iteration, s.Message)
	for _, c := range s.Checks {
		fmt.Fprintf(&b, " | %s %s %s", c.Kind, c.Name, c.Outcome)
		if c.DryRun {
			b.WriteString(" (dry run)")
		}
		// A metric's message names its value and range; otherwise the
		// value is given alone.
		switch {
		case c.Message != "":
			fmt.Fprintf(&b, ": %s", c.Message)
		case c.Value != nil:
			fmt.Fprintf(&b, " value=%s", *c.Value)
		}
	}
	return Event{Reason: reasonStepCompleted, Message: b.String()}
}

// foldSteps puts each new step into the event that shifted traffic after
// it (WeightIncreased, PromotionStep) in the same commit, as that event's
// Detail, and returns the steps left without one. A weighted step then
// writes one event, not two: the scale benchmark counts events among the
// writes per step, whose goal is at most three (status, route, event).
func foldSteps(events []Event, steps []sluicev1beta1.CanaryStep) ([]Event, []sluicev1beta1.CanaryStep) {
	if len(steps) == 0 {
		return events, nil
	}
	out := make([]Event, len(events))
	copy(out, events)
	for i := range out {
		if len(steps) == 0 {
			break
		}
		if out[i].Reason != "WeightIncreased" && out[i].Reason != "PromotionStep" {
			continue
		}
		// The oldest step not yet exported is the one this shift ends.
		out[i].Detail = stepEvent(steps[0]).Message
		steps = steps[1:]
	}
	return out, steps
}

// exportSteps records one StepCompleted Kubernetes event per step that no
// traffic-shifting event carries (foldSteps). It runs after the status
// patch, so a conflicting patch exports nothing and the retry exports the
// step once. The events are not sent to event webhooks or alerts: the
// transitions already are.
func (r *CanaryReconciler) exportSteps(c *sluicev1beta1.Canary, steps []sluicev1beta1.CanaryStep) {
	for _, s := range steps {
		r.event(c, stepEvent(s))
	}
}
