package canary

import (
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The analysis features beyond Flagger's (issue 19): an inconclusive metric
// pauses the release for a person, a dry-run metric is recorded and never
// decides, a metric with initialDelay is skipped early in the release, and
// successLimit ends the analysis after enough consecutive passing steps.

// Reasons of the inconclusive pause and of the rollback that ends it.
const (
	reasonInconclusive        = "AnalysisInconclusive"
	reasonInconclusiveExpired = "InconclusiveExpired"
	// reasonInitialDelay is the reason of a metric check skipped because
	// the release has not run for the metric's initialDelay yet.
	reasonInitialDelay = "InitialDelay"
)

// preRollout tells whether the step about to run is the first of the
// release: it runs the pre-rollout webhooks, and no metric.
func (x *decider) preRollout() bool {
	return x.st.CanaryWeight == 0 && x.st.Iterations == 0 && !x.st.Mirrored
}

// successLimitReached tells whether the step about to run ends the analysis
// by successLimit, should it pass: the steps before it passed in a row, and
// it measures the metrics (the pre-rollout step does not, so it never counts).
func (x *decider) successLimitReached() bool {
	limit := x.c.SuccessLimit()
	return limit > 0 && !x.preRollout() && x.st.ConsecutiveSuccesses+1 >= limit
}

// successLimitMet tells whether the passing steps counted so far end the analysis.
func (x *decider) successLimitMet() bool {
	limit := x.c.SuccessLimit()
	return limit > 0 && x.st.ConsecutiveSuccesses >= limit
}

// countSuccess records a passing step towards successLimit. A step that
// measured no metric (pre-rollout), skipped one for its initialDelay, or
// passed a compared metric only for want of samples is no evidence and
// neither counts nor resets the count.
func (x *decider) countSuccess(pre bool, checks []sluicev1beta1.CheckResult) {
	if pre {
		return
	}
	for _, c := range checks {
		if c.Kind == "metric" && (c.Reason == reasonInitialDelay || notJudgedYet(c)) {
			return
		}
	}
	x.st.ConsecutiveSuccesses++
}

// completeMessage says why the analysis is complete.
func (x *decider) completeMessage() string {
	if x.successLimitMet() {
		return fmt.Sprintf("Analysis complete: %d consecutive successful steps (successLimit)", x.st.ConsecutiveSuccesses)
	}
	return "Analysis complete"
}

// delayedMetrics are the metrics whose initialDelay has not passed since the
// release started, with the message of their Skipped check; nil when none.
func (x *decider) delayedMetrics() map[string]string {
	a := x.c.Spec.Analysis
	if a == nil || x.st.ReleaseStartTime == nil {
		return nil
	}
	ran := x.o.Now.Sub(x.st.ReleaseStartTime.Time)
	var out map[string]string
	for _, m := range a.Metrics {
		delay := m.InitialDelayOrZero()
		if delay == 0 || ran >= delay {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[m.Name] = fmt.Sprintf("not checked until the release has run for %s (initialDelay); it has run for %s",
			delay, ran.Round(time.Second))
	}
	return out
}

// inconclusiveChecks lists the checks that neither passed nor failed, as
// messages; dry-run checks never pause.
func inconclusiveChecks(checks []sluicev1beta1.CheckResult) []string {
	var out []string
	for _, c := range checks {
		if c.Outcome == sluicev1beta1.CheckInconclusive && !c.DryRun {
			out = append(out, c.Message)
		}
	}
	return out
}

// pause stops the analysis on an inconclusive step: no traffic change, no
// failure counted. The release waits for promote or abort, for at most
// progressDeadlineSeconds.
func (x *decider) pause(res *CheckResults, inconclusive []string) {
	x.st.HeldSince = nil
	x.st.ConsecutiveSuccesses = 0
	x.st.InconclusiveSince = x.now()
	msg := fmt.Sprintf("Analysis paused, inconclusive: %s; promote (kubectl sluice promote) or roll back (kubectl sluice abort) within %s",
		strings.Join(inconclusive, "; "), x.c.ProgressDeadline())
	x.recordStep(res.Checks, msg)
	x.event(true, reasonInconclusive, truncate(msg, 1024))
	x.waitReason = &Reason{Reason: reasonInconclusive, Message: msg}
	x.requeue(x.c.ProgressDeadline())
}

// pauseWhy is the message of the step that paused the analysis.
func (x *decider) pauseWhy() string {
	if n := len(x.st.History); n > 0 {
		return x.st.History[n-1].Message
	}
	return "an inconclusive metric paused the analysis"
}

// pauseExpired rolls back a release paused past progressDeadlineSeconds. It
// is checked before the readiness waits, so that a canary that also stops
// being ready does not stretch the pause by a second deadline.
func (x *decider) pauseExpired() bool {
	if x.st.InconclusiveSince == nil || x.o.Now.Sub(x.st.InconclusiveSince.Time) < x.c.ProgressDeadline() {
		return false
	}
	x.rollback(reasonInconclusiveExpired, fmt.Sprintf("Rolling back: the analysis stayed inconclusive for more than %s without promote or abort: %s",
		x.c.ProgressDeadline(), x.pauseWhy()))
	return true
}

// paused keeps an inconclusive release waiting, and tells whether it is
// paused: promote, abort and the deadline are handled before (analyse).
func (x *decider) paused() bool {
	if x.st.InconclusiveSince == nil {
		return false
	}
	x.waitReason = &Reason{Reason: reasonInconclusive, Message: x.pauseWhy()}
	x.requeue(x.st.InconclusiveSince.Add(x.c.ProgressDeadline()).Sub(x.o.Now))
	return true
}

// dryRunNote says what the dry-run metrics of a step would have decided,
// for the step's message; "" when they all passed.
func dryRunNote(checks []sluicev1beta1.CheckResult) string {
	var notes []string
	for _, c := range checks {
		if !c.DryRun {
			continue
		}
		var would string
		switch c.Outcome {
		case sluicev1beta1.CheckPassed, sluicev1beta1.CheckSkipped:
			continue
		case sluicev1beta1.CheckInconclusive:
			would = "paused the release"
		default:
			would = "failed the step"
		}
		notes = append(notes, fmt.Sprintf("%s %s would have %s (%s)", c.Name, c.Outcome, would, c.Message))
	}
	if len(notes) == 0 {
		return ""
	}
	return "dry run: " + strings.Join(notes, "; ")
}
