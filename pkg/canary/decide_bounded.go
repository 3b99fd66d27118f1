package canary

import (
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The decisions that keep a wait from lasting forever: a held analysis and
// a deletion end at the progress deadline.

// hold keeps the step where it is while a check with onError: Hold cannot
// be evaluated, for at most progressDeadlineSeconds: past it the release is
// rolled back, so that no analysis sits at a partial weight unnoticed.
func (x *decider) hold(res *CheckResults, held []string) {
	if x.st.HeldSince == nil {
		x.st.HeldSince = x.now()
	}
	if x.o.Now.Sub(x.st.HeldSince.Time) >= x.c.ProgressDeadline() {
		x.rollback(reasonHoldExpired, fmt.Sprintf("Rolling back: the analysis was held for more than %s (onError: Hold): %s",
			x.c.ProgressDeadline(), strings.Join(held, "; ")))
		return
	}
	msg := "Step held (onError: Hold): " + strings.Join(held, "; ")
	x.recordStep(res.Checks, msg)
	x.event(true, "CheckHeld", msg)
	x.waitReason = &Reason{Reason: "CheckHeld", Message: fmt.Sprintf("the analysis is held since %s (rolled back after %s): %s",
		x.st.HeldSince.UTC().Format(time.RFC3339), x.c.ProgressDeadline(), strings.Join(held, "; "))}
}

// rejectedOnTarget tells whether the target runs the revision a rollback
// rejected, while the primary runs the promoted one.
func (x *decider) rejectedOnTarget() bool {
	st := x.st
	return st.LastPromotedSpec != "" && st.LastAppliedSpec != st.LastPromotedSpec && failedStep(st) != "" &&
		x.o.Target.TemplateHash == st.LastAppliedSpec && x.o.Primary.Exists && x.o.Primary.TemplateHash == st.LastPromotedSpec
}

// abandonTarget ends a deletion whose target did not become ready within
// the progress deadline without breaking traffic: the primary, its config
// copies and autoscaler are released from the Canary and keep serving
// through the apex Service, and the Canary goes.
func (x *decider) abandonTarget() {
	msg := fmt.Sprintf("The target did not become ready within %s (%s): the Canary is removed and ", x.c.ProgressDeadline(), x.o.Target.NotReadyMessage)
	if x.o.Primary.Exists {
		x.act(Action{Kind: ReleasePrimary})
		msg += fmt.Sprintf("%s is left serving, released from it; delete it once the target serves", x.c.PrimaryName())
	} else {
		x.act(Action{Kind: RestoreApex})
		msg += "the target is served as it is (there is no primary to keep)"
	}
	x.act(Action{Kind: FinalizeRoutes})
	x.stalled = &Reason{Reason: "TargetNotReady", Message: msg}
	x.event(true, "TargetNotReady", msg)
	x.setPhase(sluicev1beta1.CanaryPhaseTerminated, true, msg)
	x.d.RemoveFinalizer = true
}
