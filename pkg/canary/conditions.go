package canary

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// activePhases are the phases of a release in progress.
var activePhases = map[sluicev1beta1.CanaryPhase]bool{
	sluicev1beta1.CanaryPhaseInitializing:     true,
	sluicev1beta1.CanaryPhaseWaiting:          true,
	sluicev1beta1.CanaryPhaseProgressing:      true,
	sluicev1beta1.CanaryPhaseWaitingPromotion: true,
	sluicev1beta1.CanaryPhasePromoting:        true,
	sluicev1beta1.CanaryPhaseFinalising:       true,
	sluicev1beta1.CanaryPhaseTerminating:      true,
}

// holdsSlot tells whether a phase counts against --max-concurrent-rollouts.
func holdsSlot(p sluicev1beta1.CanaryPhase) bool {
	switch p {
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion,
		sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising:
		return true
	}
	return false
}

// setConditions derives Ready, Progressing, Reconciling, Promoted and
// Stalled from the status and the observation, each with observedGeneration.
func setConditions(st *sluicev1beta1.CanaryStatus, c *sluicev1beta1.Canary, o Observation, stalled, wait *Reason) {
	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: truncate(msg, 32768),
			ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(o.Now),
		})
	}
	phase := string(st.Phase)
	if phase == "" {
		phase = "Pending"
	}
	settled := st.Phase == sluicev1beta1.CanaryPhaseInitialized || st.Phase == sluicev1beta1.CanaryPhaseSucceeded
	promoted := settled && st.LastPromotedSpec != "" && st.LastPromotedSpec == st.LastAppliedSpec &&
		(o.Target.TemplateHash == "" || o.Target.TemplateHash == st.LastAppliedSpec)

	if stalled == nil && st.Phase == sluicev1beta1.CanaryPhaseFailed {
		stalled = failedReason(st)
	}
	if stalled != nil {
		set(sluicev1beta1.StalledCondition, true, stalled.Reason, stalled.Message)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, sluicev1beta1.StalledCondition)
	}

	if promoted {
		set(sluicev1beta1.PromotedCondition, true, phase, fmt.Sprintf("Revision %s is promoted and serves all traffic", st.Revision))
	} else {
		set(sluicev1beta1.PromotedCondition, false, phase, fmt.Sprintf("Revision %s is not promoted (phase %s)", st.Revision, phase))
	}

	switch {
	case st.Phase == sluicev1beta1.CanaryPhaseFailed && failedStep(st) != "" && stalled != nil:
		set(sluicev1beta1.ReadyCondition, false, stalled.Reason, "Release phase Failed: "+failedStep(st))
	case stalled != nil:
		set(sluicev1beta1.ReadyCondition, false, stalled.Reason, stalled.Message)
	case promoted:
		set(sluicev1beta1.ReadyCondition, true, phase, "The latest revision is promoted")
	default:
		set(sluicev1beta1.ReadyCondition, false, phase, "Release phase "+phase)
	}

	progressing := activePhases[st.Phase]
	reason, msg := phase, "Release phase "+phase
	if wait != nil {
		reason, msg = wait.Reason, wait.Message
	}
	// While the reason stays the same, so does the message: a wait's detail
	// (replicas available, time left) changes on every reconcile, and a
	// status patch each time is a write per Deployment event at scale.
	want := metav1.ConditionFalse
	if progressing {
		want = metav1.ConditionTrue
	}
	if old := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ProgressingCondition); old != nil && old.Reason == reason && old.Status == want {
		msg = old.Message
	}
	set(sluicev1beta1.ProgressingCondition, progressing, reason, msg)
	// Reconciling is Progressing in kstatus' vocabulary (Flux, Argo CD and
	// GitSync's wait read it): True while a release runs, so a Canary mid
	// release is InProgress; never together with Stalled, which kstatus
	// reads as Failed.
	reconciling := progressing && stalled == nil
	if !reconciling {
		reason, msg = phase, "No release in progress (phase "+phase+")"
		if stalled != nil {
			reason, msg = stalled.Reason, "Stalled: "+stalled.Message
		}
	}
	set(sluicev1beta1.ReconcilingCondition, reconciling, reason, msg)
}

// failureReasons are the reasons of the decisions that fail a release.
var failureReasons = map[string]bool{
	"ThresholdReached": true, "ProgressDeadlineExceeded": true, "Aborted": true, "RollbackRequested": true,
	reasonHoldExpired: true, reasonPromotionFailed: true, "ReleaseFailed": true, reasonInconclusiveExpired: true,
}

// failedReason is why a release failed, for the Stalled condition of a
// Failed Canary: the one the failing decision recorded, kept while the
// phase stays Failed.
func failedReason(st *sluicev1beta1.CanaryStatus) *Reason {
	if old := meta.FindStatusCondition(st.Conditions, sluicev1beta1.StalledCondition); old != nil && old.Status == metav1.ConditionTrue && failureReasons[old.Reason] {
		return &Reason{Reason: old.Reason, Message: old.Message}
	}
	msg := failedStep(st)
	if msg == "" {
		msg = "the release of revision " + st.Revision + " failed"
	}
	return &Reason{Reason: "ReleaseFailed", Message: msg}
}

// failedStep is the message of the step that failed the release (the last
// step of the history, recorded by the rollback), or "".
func failedStep(st *sluicev1beta1.CanaryStatus) string {
	if n := len(st.History); n > 0 && st.History[n-1].Phase == sluicev1beta1.CanaryPhaseFailed {
		return st.History[n-1].Message
	}
	return ""
}
