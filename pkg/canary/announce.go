package canary

import (
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// EventSink receives every event of a Canary (the event webhooks). It must
// not block. It is called once per event, after the status patch that
// records the event succeeded.
type EventSink interface {
	Enqueue(c *sluicev1beta1.Canary, warning bool, message string, at time.Time)
}

// Announcer sends an event to a Canary's alerts (AlertProviders). It must
// not block. It is called once per transition, after the status patch that
// records it succeeded, with the Canary as committed. pkg/notify implements
// it.
type Announcer interface {
	Announce(c *sluicev1beta1.Canary, e Event, severity string, failed []sluicev1beta1.CheckResult)
}

// StepAnnouncer is an optional capability of an Announcer: it is also told
// of the weight steps, which are not announced to alerts (commit statuses
// show the current weight). Called as Announce is: once, after the status
// patch, never blocking.
type StepAnnouncer interface {
	AnnounceStep(c *sluicev1beta1.Canary, e Event)
}

// toAnnounce returns the events of a decision to send once its status
// patch succeeded, and records their key in the status to patch. A
// transition whose key the status already holds was announced by an
// earlier reconcile: its events are not sent again. Events that come with
// no status change (a hand edit of the routes undone) are each an action
// of their own, and are sent.
func toAnnounce(c *sluicev1beta1.Canary, d *Decision) []Event {
	if len(d.Events) == 0 {
		return nil
	}
	if reflect.DeepEqual(c.Status, d.Status) {
		return d.Events
	}
	st := &d.Status
	key := sluicev1beta1.AnnouncedTransition{
		Revision: st.Revision, Phase: st.Phase, Weight: st.CanaryWeight,
		Iteration: st.Iterations, FailedChecks: st.FailedChecks, StepTime: st.LastStepTime.DeepCopy(),
	}
	if last := c.Status.LastAnnounced; last != nil && equality.Semantic.DeepEqual(*last, key) {
		return nil
	}
	st.LastAnnounced = &key
	return d.Events
}

// announceAll sends committed events: Kubernetes events, the event
// webhooks and the alerts. It never blocks (the sinks queue).
func (r *CanaryReconciler) announceAll(c *sluicev1beta1.Canary, events []Event, o Observation) {
	if len(events) == 0 {
		return
	}
	c = c.DeepCopy() // the sinks keep it; the reconcile goes on changing its own
	for _, e := range events {
		r.event(c, e)
		if r.EventHooks != nil {
			r.EventHooks.Enqueue(c, e.Warning, e.Message, o.Now)
		}
		if sev, ok := announce(c, e, o.Checks); ok && r.Announcer != nil {
			r.Announcer.Announce(c, e, sev, failedChecks(o.Checks))
		} else if sa, ok := r.Announcer.(StepAnnouncer); ok && (e.Reason == "WeightIncreased" || e.Reason == "PromotionStep") {
			sa.AnnounceStep(c, e)
		}
	}
}

// Severities of announcements, as in analysis.alerts[].severity.
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// announce tells whether an event is announced, and with which severity:
// every terminal and waiting transition (including rollbacks for a canary
// that never became ready and failed pre-rollout checks), a new revision,
// failed checks and restored routes. Failures of webhooks with muteAlert
// are not announced.
func announce(c *sluicev1beta1.Canary, e Event, res *CheckResults) (string, bool) {
	switch sluicev1beta1.CanaryPhase(e.Reason) {
	case sluicev1beta1.CanaryPhaseFailed:
		return SeverityError, true
	case sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseProgressing:
		return SeverityInfo, true
	case sluicev1beta1.CanaryPhaseWaiting, sluicev1beta1.CanaryPhaseWaitingPromotion:
		if mutedGate(c, e) {
			return "", false
		}
		return SeverityInfo, true
	}
	switch e.Reason {
	case "CheckFailed":
		if res != nil && allMuted(c, failedChecks(res)) {
			return "", false
		}
		return SeverityWarn, true
	case "CheckHeld", "RoutesRestored", "Restarted", reasonInconclusive:
		return SeverityWarn, true
	}
	return "", false
}

// failedChecks are the checks of a step that did not pass.
func failedChecks(res *CheckResults) []sluicev1beta1.CheckResult {
	if res == nil {
		return nil
	}
	var out []sluicev1beta1.CheckResult
	for _, c := range res.Checks {
		if c.Outcome != sluicev1beta1.CheckPassed && c.Outcome != sluicev1beta1.CheckSkipped && !c.DryRun {
			out = append(out, c)
		}
	}
	return out
}

// allMuted is true when every failed check is a webhook with muteAlert.
func allMuted(c *sluicev1beta1.Canary, failed []sluicev1beta1.CheckResult) bool {
	if len(failed) == 0 {
		return false
	}
	for _, f := range failed {
		if f.Kind != "webhook" || !hookMuted(c, f.Name) {
			return false
		}
	}
	return true
}

// mutedGate is true when a waiting transition comes from gates whose hooks
// all have muteAlert.
func mutedGate(c *sluicev1beta1.Canary, e Event) bool {
	kind := sluicev1beta1.WebhookConfirmRollout
	if sluicev1beta1.CanaryPhase(e.Reason) == sluicev1beta1.CanaryPhaseWaitingPromotion {
		kind = sluicev1beta1.WebhookConfirmPromotion
	}
	hooks := hooksOf(c, kind)
	if len(hooks) == 0 {
		return false
	}
	for _, h := range hooks {
		if !h.MuteAlert {
			return false
		}
	}
	return true
}

func hookMuted(c *sluicev1beta1.Canary, name string) bool {
	if c.Spec.Analysis == nil {
		return false
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.Name == name {
			return h.MuteAlert
		}
	}
	return false
}
