package canary

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// initialize waits for the primary (created by EnsureObjects) to be ready,
// then takes traffic over; the target is scaled to zero once the traffic
// has drained from it (idle).
func (x *decider) initialize() {
	x.setPhase(sluicev1beta1.CanaryPhaseInitializing, false, "Creating the primary, its Services and routes")
	if !x.o.Primary.Exists || !x.o.Primary.Ready {
		left := x.deadlineLeft()
		msg := "waiting for the primary to be created"
		if x.o.Primary.Exists {
			msg = "waiting for the primary to be ready: " + x.o.Primary.NotReadyMessage
		}
		if left <= 0 {
			// Nothing to roll back to yet: report and keep waiting.
			x.stalled = &Reason{Reason: "PrimaryNotReady", Message: fmt.Sprintf("the primary did not become ready within %s: %s", x.c.ProgressDeadline(), x.o.Primary.NotReadyMessage)}
			x.requeue(waitRetry)
			return
		}
		x.waitReason = &Reason{Reason: "PrimaryNotReady", Message: msg}
		x.requeue(min(left, waitRetry))
		return
	}
	x.setRoutes(100, 0, false)
	x.st.NotReadySince = nil
	x.st.LastAppliedSpec = x.o.Primary.TemplateHash
	x.st.LastPromotedSpec = x.o.Primary.TemplateHash
	x.st.TrackedConfigs = x.o.Target.Configs
	x.st.TrackedConfigVersions = x.o.Target.ConfigVersions
	x.st.Revision = revisionOf(x.st.LastAppliedSpec, x.st.TrackedConfigs)
	x.st.Iterations, x.st.FailedChecks = 0, 0
	x.setPhase(sluicev1beta1.CanaryPhaseInitialized, false, "Initialization done: the primary serves all traffic")
	x.requeue(x.drain())
}

// idle watches for a new revision (Initialized, Waiting, Succeeded, Failed).
func (x *decider) idle() {
	// A failed revision may be retried from Failed, or from Waiting when the
	// retry waits for a slot or an approval.
	failedPending := x.st.LastAppliedSpec != x.st.LastPromotedSpec
	retryable := x.st.Phase == sluicev1beta1.CanaryPhaseFailed ||
		(x.st.Phase == sluicev1beta1.CanaryPhaseWaiting && failedPending)
	retry := retryable && x.request(sluicev1beta1.RetryAnnotation, false)
	// Requests for a release that is not running are settled, not kept for later.
	x.request(sluicev1beta1.PromoteAnnotation, true)
	x.request(sluicev1beta1.AbortAnnotation, true)
	if !retryable {
		x.request(sluicev1beta1.RetryAnnotation, true)
	}
	// Keep the target at zero while idle, unless a failed promotion left the
	// traffic on it (canary weight 100).
	scaleDown := func() {
		if !x.o.Target.ScaledToZero && x.st.CanaryWeight == 0 && x.drained() {
			x.act(Action{Kind: ScaleTargetToZero})
		}
		x.removeBaseline()
	}
	if !retry && !x.newRevision() {
		scaleDown()
		if x.st.Phase == sluicev1beta1.CanaryPhaseWaiting {
			if failedPending {
				x.setPhase(sluicev1beta1.CanaryPhaseFailed, true, "The pending revision was withdrawn: the last applied revision failed and is not promoted")
			} else {
				x.setPhase(sluicev1beta1.CanaryPhaseSucceeded, false, "The pending revision was withdrawn: the target is back on the promoted revision")
			}
		}
		return
	}
	if !retry && x.revertedToPromoted() {
		scaleDown()
		x.st.LastAppliedSpec = x.o.Target.TemplateHash
		x.st.Revision = revisionOf(x.st.LastAppliedSpec, x.st.TrackedConfigs)
		x.setPhase(sluicev1beta1.CanaryPhaseSucceeded, false, "The target is back on the promoted revision: nothing to release")
		return
	}
	x.d.NeedsSlot = true
	if !x.o.SlotFree {
		scaleDown()
		x.setPhase(sluicev1beta1.CanaryPhaseWaiting, false, "New revision waiting for a free rollout slot")
		x.waitReason = &Reason{Reason: "ConcurrencyLimit", Message: "the number of concurrent rollouts is at --max-concurrent-rollouts; this release starts when a slot frees, oldest first"}
		x.requeue(waitRetry)
		return
	}
	if x.hasHooks(sluicev1beta1.WebhookConfirmRollout) {
		if x.o.Checks == nil {
			x.d.NeedChecks = &CheckRequest{Gates: []string{sluicev1beta1.WebhookConfirmRollout}}
			return
		}
		if !x.o.Checks.GatesOpen[sluicev1beta1.WebhookConfirmRollout] {
			scaleDown()
			x.setPhase(sluicev1beta1.CanaryPhaseWaiting, false, "New revision waiting for confirm-rollout approval")
			x.waitReason = &Reason{Reason: "ConfirmRollout", Message: "a confirm-rollout webhook has not approved the release yet"}
			x.requeue(x.c.AnalysisInterval())
			return
		}
	}
	if retry {
		x.request(sluicev1beta1.RetryAnnotation, true)
	}
	x.start(retry)
}

// start begins the analysis of the target's revision.
func (x *decider) start(retry bool) {
	restart := x.st.Phase == sluicev1beta1.CanaryPhaseProgressing || x.st.Phase == sluicev1beta1.CanaryPhaseWaitingPromotion
	x.act(Action{Kind: ScaleTargetUp})
	x.ensureBaseline()
	x.setRoutes(100, 0, false)
	x.st.LastAppliedSpec = x.o.Target.TemplateHash
	x.st.TrackedConfigs = x.o.Target.Configs
	x.st.TrackedConfigVersions = x.o.Target.ConfigVersions
	x.st.Revision = revisionOf(x.st.LastAppliedSpec, x.st.TrackedConfigs)
	x.st.Iterations, x.st.FailedChecks = 0, 0
	x.st.LastStepTime = x.now()
	x.st.NotReadySince = x.now()
	x.st.HeldSince, x.st.InconclusiveSince, x.st.ConsecutiveSuccesses = nil, nil, 0
	x.st.History = nil
	x.st.ComparisonSamples = nil // a release compares its own steps only
	if x.c.Spec.Analysis != nil && x.c.Spec.Analysis.SessionAffinity != nil && x.o.NewCookie != "" {
		if x.st.SessionAffinityCookie != "" {
			x.st.PreviousSessionAffinityCookie = x.st.SessionAffinityCookie
		}
		x.st.SessionAffinityCookie = x.o.NewCookie
		x.st.PrimarySessionAffinityCookie = x.o.NewPrimaryCookie
	}
	msg := fmt.Sprintf("New revision %s detected: starting the analysis", x.st.Revision)
	switch {
	case retry:
		msg = fmt.Sprintf("Retrying revision %s as requested by %s", x.st.Revision, sluicev1beta1.RetryAnnotation)
	case restart:
		msg = fmt.Sprintf("New revision %s detected during the analysis: restarting it", x.st.Revision)
		x.event(false, "Restarted", msg)
	}
	x.setPhase(sluicev1beta1.CanaryPhaseProgressing, false, msg)
	if x.o.Target.ScaledToZero || !x.o.Target.Ready {
		// Said now rather than on the next reconcile: one status write less
		// per release.
		x.waitReason = &Reason{Reason: "CanaryNotReady", Message: fmt.Sprintf("waiting for the canary pods of revision %s to be ready", x.st.Revision)}
	}
	x.requeue(x.c.AnalysisInterval())
}

// analyse runs one analysis step when it is due (Progressing, WaitingPromotion).
func (x *decider) analyse() {
	if x.newRevision() {
		if x.revertedToPromoted() {
			x.setRoutes(100, 0, false)
			x.requeue(x.drain())
			x.st.LastAppliedSpec = x.o.Target.TemplateHash
			x.st.Revision = revisionOf(x.st.LastAppliedSpec, x.st.TrackedConfigs)
			x.st.NotReadySince, x.st.HeldSince, x.st.InconclusiveSince = nil, nil, nil
			x.st.Iterations, x.st.FailedChecks = 0, 0
			x.setPhase(sluicev1beta1.CanaryPhaseSucceeded, false, "The target went back to the promoted revision: analysis cancelled")
			return
		}
		x.start(false)
		return
	}
	x.request(sluicev1beta1.RetryAnnotation, true) // nothing to retry while a release runs
	if x.o.Target.ScaledToZero {
		x.act(Action{Kind: ScaleTargetUp}) // scaled down by someone else: the analysis needs it
	}
	x.ensureBaseline()
	if x.request(sluicev1beta1.AbortAnnotation, true) {
		x.rollback("Aborted", fmt.Sprintf("Rolled back as requested by %s", sluicev1beta1.AbortAnnotation))
		return
	}
	if x.pauseExpired() {
		return
	}
	if !x.o.Target.Ready {
		left := x.deadlineLeft()
		if left <= 0 {
			x.rollback("ProgressDeadlineExceeded", fmt.Sprintf("The canary did not become ready within %s: %s", x.c.ProgressDeadline(), x.o.Target.NotReadyMessage))
			return
		}
		x.waitReason = &Reason{Reason: cmp.Or(x.o.Target.NotReadyReason, "CanaryNotReady"), Message: x.o.Target.NotReadyMessage}
		x.requeue(min(left, waitRetry))
		return
	}
	if x.waitForBaseline() {
		return
	}
	x.st.NotReadySince = nil
	if !x.o.Primary.Ready {
		x.waitReason = &Reason{Reason: "PrimaryNotReady", Message: x.o.Primary.NotReadyMessage}
		x.requeue(waitRetry)
		return
	}
	if x.c.Spec.SkipAnalysis {
		x.startPromotion("Analysis skipped (spec.skipAnalysis): promoting")
		return
	}
	if x.request(sluicev1beta1.PromoteAnnotation, true) {
		x.startPromotion(fmt.Sprintf("Promoting now as requested by %s", sluicev1beta1.PromoteAnnotation))
		return
	}
	if x.paused() {
		return
	}
	if due, ok := x.due(); !ok {
		x.requeue(due.Sub(x.o.Now))
		return
	}
	x.step()
}

// step asks for the checks of this step, then acts on their outcome.
func (x *decider) step() {
	strategy := x.c.Strategy(x.o.Provider)
	atEnd := x.atEnd(strategy) || x.successLimitReached()
	pre := x.preRollout()
	if x.o.Checks == nil {
		req := &CheckRequest{Rollback: x.hasHooks(sluicev1beta1.WebhookRollback), Analysis: sluicev1beta1.WebhookRollout}
		if pre {
			req.Analysis = sluicev1beta1.WebhookPreRollout
		} else {
			req.Delayed = x.delayedMetrics()
		}
		switch {
		case atEnd && x.hasHooks(sluicev1beta1.WebhookConfirmPromotion):
			req.Gates = []string{sluicev1beta1.WebhookConfirmPromotion}
		case !atEnd && strategy == sluicev1beta1.StrategyCanary && x.hasHooks(sluicev1beta1.WebhookConfirmTrafficIncrease):
			req.Gates = []string{sluicev1beta1.WebhookConfirmTrafficIncrease}
		}
		x.d.NeedChecks = req
		return
	}
	res := x.o.Checks
	x.metricsReady(res.Checks)
	if res.RollbackRequested {
		x.rollback("RollbackRequested", "A rollback webhook requested the rollback")
		return
	}
	x.st.LastStepTime = x.now()
	x.recordSamples(res.Checks)
	x.requeue(x.c.AnalysisInterval())
	if failed := failures(res.Checks); len(failed) > 0 {
		x.st.HeldSince = nil
		x.st.ConsecutiveSuccesses = 0
		x.st.FailedChecks++
		msg := fmt.Sprintf("Halt advancement (%d/%d failed checks): %s", x.st.FailedChecks, x.c.Threshold(), strings.Join(failed, "; "))
		x.recordStep(res.Checks, msg)
		if x.st.FailedChecks >= x.c.Threshold() {
			x.rollback("ThresholdReached", fmt.Sprintf("Rolling back: %d failed checks reached the threshold: %s", x.st.FailedChecks, strings.Join(failed, "; ")))
			return
		}
		x.event(true, "CheckFailed", msg)
		return
	}
	if held := heldChecks(res.Checks); len(held) > 0 {
		x.st.ConsecutiveSuccesses = 0
		x.hold(res, held)
		return
	}
	if inconclusive := inconclusiveChecks(res.Checks); len(inconclusive) > 0 {
		x.pause(res, inconclusive)
		return
	}
	x.st.HeldSince = nil
	x.countSuccess(pre, res.Checks)
	// successLimit is judged again now that the step's checks are counted.
	atEnd = x.atEnd(strategy) || x.successLimitMet()
	if atEnd {
		if !gateOpen(res, sluicev1beta1.WebhookConfirmPromotion) {
			x.setPhase(sluicev1beta1.CanaryPhaseWaitingPromotion, false, "Analysis complete: waiting for confirm-promotion approval")
			x.recordStep(res.Checks, "Waiting for confirm-promotion approval")
			return
		}
		x.recordStep(res.Checks, x.completeMessage())
		if strategy != sluicev1beta1.StrategyCanary {
			// Blue/green and A/B: all traffic to the canary while the primary is updated.
			x.setRoutes(0, 100, false)
		}
		x.startPromotion("Analysis complete: promoting")
		return
	}
	x.setPhase(sluicev1beta1.CanaryPhaseProgressing, false, "Analysis resumed")
	switch strategy {
	case sluicev1beta1.StrategyCanary:
		x.advanceWeight(res)
	case sluicev1beta1.StrategyABTesting:
		x.st.Iterations++
		x.setRoutes(0, 100, false) // the router sends matching requests only
		x.recordStep(res.Checks, fmt.Sprintf("A/B iteration %d/%d", x.st.Iterations, x.c.Iterations(x.o.Provider)))
	default:
		x.st.Iterations++
		mirror := x.c.Spec.Analysis != nil && x.c.Spec.Analysis.Mirror
		if mirror != x.st.Mirrored {
			x.setRoutes(100, 0, mirror)
		}
		x.recordStep(res.Checks, fmt.Sprintf("Blue/green iteration %d/%d", x.st.Iterations, x.c.Iterations(x.o.Provider)))
	}
}

// advanceWeight moves the canary one step up the weight ladder.
func (x *decider) advanceWeight(res *CheckResults) {
	a := x.c.Spec.Analysis
	if a != nil && a.Mirror && x.st.CanaryWeight == 0 && !x.st.Mirrored {
		x.setRoutes(100, 0, true)
		x.recordStep(res.Checks, "Mirroring traffic to the canary before shifting weight")
		return
	}
	if !gateOpen(res, sluicev1beta1.WebhookConfirmTrafficIncrease) {
		x.recordStep(res.Checks, "Waiting for confirm-traffic-increase approval")
		x.event(false, "WaitingTrafficIncrease", "A confirm-traffic-increase webhook has not approved more traffic yet")
		return
	}
	next := nextWeight(x.c, x.st.CanaryWeight)
	x.setRoutes(100-next, next, false)
	x.recordStep(res.Checks, fmt.Sprintf("Canary weight %d%%", next))
	x.event(false, "WeightIncreased", fmt.Sprintf("Advance canary weight to %d%%", next))
}

// atEnd tells whether the analysis is complete and promotion comes next.
func (x *decider) atEnd(strategy sluicev1beta1.DeploymentStrategy) bool {
	if strategy == sluicev1beta1.StrategyCanary {
		return x.st.CanaryWeight >= x.c.MaxWeight()
	}
	return x.st.Iterations >= x.c.Iterations(x.o.Provider)
}

// nextWeight is the next rung: the next stepWeights entry, or weight +
// stepWeight capped at maxWeight.
func nextWeight(c *sluicev1beta1.Canary, w int32) int32 {
	a := c.Spec.Analysis
	if a == nil {
		return c.MaxWeight()
	}
	if len(a.StepWeights) > 0 {
		for _, s := range a.StepWeights {
			if s > w {
				return s
			}
		}
		return c.MaxWeight()
	}
	return min(w+max(a.StepWeight, 1), c.MaxWeight())
}

// startPromotion moves to Promoting: the primary gets the canary's template.
func (x *decider) startPromotion(msg string) {
	x.act(Action{Kind: PromotePrimary})
	x.st.NotReadySince = x.now()
	x.st.InconclusiveSince = nil // a promote request ends an inconclusive pause
	x.setPhase(sluicev1beta1.CanaryPhasePromoting, false, msg)
	// The primary is only now given the new template: say what comes next
	// in this status write rather than in one more on the next reconcile.
	x.waitReason = &Reason{Reason: "PrimaryNotReady", Message: fmt.Sprintf("waiting for the promoted primary (revision %s) to be ready", x.st.Revision)}
	x.requeue(waitRetry)
}

// promote waits for the updated primary, then shifts traffic back to it.
func (x *decider) promote() {
	x.act(Action{Kind: PromotePrimary})
	if x.o.Target.ScaledToZero {
		x.act(Action{Kind: ScaleTargetUp}) // it may serve traffic until the primary is ready
	}
	if x.o.Primary.TemplateHash != x.st.LastAppliedSpec || !x.o.Primary.Ready {
		left := x.deadlineLeft()
		if left <= 0 {
			// The canary is good and the primary is not: keep serving from the canary.
			x.setRoutes(0, 100, false)
			x.st.NotReadySince = nil
			msg := fmt.Sprintf("Promotion failed: the primary did not become ready within %s (%s); traffic stays on the canary", x.c.ProgressDeadline(), x.o.Primary.NotReadyMessage)
			x.setPhase(sluicev1beta1.CanaryPhaseFailed, true, msg)
			x.stalled = &Reason{Reason: reasonPromotionFailed, Message: msg}
			x.act(Action{Kind: RunPostRollout})
			return
		}
		x.waitReason = &Reason{Reason: "PrimaryNotReady", Message: "waiting for the promoted primary to be ready: " + x.o.Primary.NotReadyMessage}
		x.requeue(min(left, waitRetry))
		return
	}
	x.st.NotReadySince = nil
	step := int32(0)
	if a := x.c.Spec.Analysis; a != nil && x.c.Strategy(x.o.Provider) == sluicev1beta1.StrategyCanary {
		step = a.StepWeightPromotion
	}
	if step > 0 && x.st.CanaryWeight > 0 {
		if due, ok := x.due(); !ok {
			x.requeue(due.Sub(x.o.Now))
			return
		}
		w := max(x.st.CanaryWeight-step, 0)
		x.setRoutes(100-w, w, false)
		x.st.LastStepTime = x.now()
		if w > 0 {
			x.event(false, "PromotionStep", fmt.Sprintf("Primary weight %d%%", 100-w))
			x.requeue(x.c.AnalysisInterval())
			return
		}
	} else {
		x.setRoutes(100, 0, false)
	}
	x.setPhase(sluicev1beta1.CanaryPhaseFinalising, false, "The primary serves all traffic: scaling the canary down once the traffic has drained")
	x.requeue(x.drain())
}

// finalise scales the canary down once the traffic has drained from it
// (requests in flight, and data planes that apply a route change after a
// moment), waits for that, then marks success.
func (x *decider) finalise() {
	if !x.o.Target.ScaledToZero {
		if !x.drained() {
			return
		}
		x.act(Action{Kind: ScaleTargetToZero})
		x.removeBaseline()
		x.requeue(waitRetry)
		return
	}
	x.st.LastPromotedSpec = x.st.LastAppliedSpec
	x.st.CanaryWeight, x.st.Iterations, x.st.FailedChecks = 0, 0, 0
	x.st.Mirrored = false
	x.setPhase(sluicev1beta1.CanaryPhaseSucceeded, false, fmt.Sprintf("Promotion of revision %s completed", x.st.Revision))
	x.act(Action{Kind: RunPostRollout})
}

// rollback routes everything to the primary, scales the canary down and fails the release.
func (x *decider) rollback(reason, msg string) {
	x.setRoutes(100, 0, false)
	x.requeue(x.drain()) // idle scales the canary down once the traffic has drained
	x.st.NotReadySince, x.st.HeldSince, x.st.InconclusiveSince = nil, nil, nil
	x.event(true, reason, msg)
	x.setPhase(sluicev1beta1.CanaryPhaseFailed, true, fmt.Sprintf("Canary failed: %s", msg))
	x.recordStep(nil, msg)
	x.stalled = &Reason{Reason: reason, Message: msg}
	x.act(Action{Kind: RunPostRollout})
}

// terminate serves the target again before the Canary (and with it the
// primary) goes away.
func (x *decider) terminate() {
	if x.st.Phase != sluicev1beta1.CanaryPhaseTerminating {
		// The deletion has its own progress deadline, from now.
		x.st.NotReadySince, x.st.HeldSince, x.st.InconclusiveSince = nil, nil, nil
	}
	x.setPhase(sluicev1beta1.CanaryPhaseTerminating, false, "Canary deleted: restoring the target before removing the primary")
	if x.o.Target.Exists {
		// Restoring the promoted revision and waiting for the target are
		// bounded by the progress deadline, counted from the deletion.
		left := x.deadlineLeft()
		if x.rejectedOnTarget() {
			if left <= 0 {
				x.abandonTarget()
				return
			}
			// The target still runs the revision the analysis rejected:
			// it gets the promoted template back (from the primary) before
			// it is served.
			x.act(Action{Kind: RestoreTargetTemplate})
			x.waitReason = &Reason{Reason: "RestoringPromotedRevision", Message: fmt.Sprintf("the target runs the rejected revision %s: restoring the promoted one before removing the primary", x.st.Revision)}
			x.requeue(min(left, waitRetry))
			return
		}
		x.act(Action{Kind: ScaleTargetUp})
		if !x.o.Target.Ready {
			if left <= 0 {
				x.abandonTarget()
				return
			}
			x.waitReason = &Reason{Reason: "TargetNotReady", Message: fmt.Sprintf("waiting for the target to be ready before removing the primary (at most %s): %s", x.c.ProgressDeadline(), x.o.Target.NotReadyMessage)}
			x.requeue(min(left, waitRetry))
			return
		}
		x.act(Action{Kind: RestoreApex})
		// The routing objects are left serving the apex Service only
		// (pre-existing ones restored, those Sluice created released from
		// the Canary), so deleting the Canary never breaks the routes.
		x.act(Action{Kind: FinalizeRoutes})
		// The primary and the generated Services go with the finalizer:
		// give the data plane the drain to apply the released routes
		// first. LastStepTime records when the routes were released.
		if x.st.LastStepTime == nil || x.st.LastStepTime.Before(x.st.LastTransitionTime) {
			x.st.LastStepTime = x.now()
		}
		if left := x.st.LastStepTime.Add(x.drain()).Sub(x.o.Now); left > 0 {
			x.waitReason = &Reason{Reason: "Draining", Message: fmt.Sprintf("the routes serve the target; the primary is removed in %s, once the data plane has applied them", left.Round(time.Second))}
			x.requeue(left)
			return
		}
	} else if x.c.Spec.RevertOnDeletion {
		// No target to serve: the apex Service is not restored, so the
		// routes are only finalized when asked.
		x.act(Action{Kind: FinalizeRoutes})
	}
	x.setPhase(sluicev1beta1.CanaryPhaseTerminated, false, "The target serves traffic again: removing the primary")
	x.d.RemoveFinalizer = true
}

// minDrain and maxDrain bound drain.
const (
	minDrain = 3 * time.Second
	maxDrain = 10 * time.Second
)

// drain is how long a workload keeps its pods after the routes moved away
// from it: requests in flight finish, and data planes that apply a route
// change after a moment (Traefik ~0.2 s, Envoy longer) stop sending to it.
// One analysis interval, within [minDrain, maxDrain].
func (x *decider) drain() time.Duration {
	return min(max(x.c.AnalysisInterval(), minDrain), maxDrain)
}

// drained reports whether the drain after the last phase transition (when
// the routes moved) is over; if not, it asks to be called again then.
func (x *decider) drained() bool {
	if x.st.LastTransitionTime == nil {
		return true
	}
	left := x.st.LastTransitionTime.Add(x.drain()).Sub(x.o.Now)
	if left <= 0 {
		return true
	}
	x.requeue(left)
	return false
}

// due returns when the next step is due and whether it is due now.
func (x *decider) due() (time.Time, bool) {
	if x.st.LastStepTime == nil {
		return x.o.Now, true
	}
	due := x.st.LastStepTime.Add(x.c.AnalysisInterval())
	return due, !x.o.Now.Before(due)
}

func (x *decider) hasHooks(kind string) bool {
	if x.c.Spec.Analysis == nil {
		return false
	}
	for _, h := range x.c.Spec.Analysis.Webhooks {
		if h.TypeOrDefault() == kind {
			return true
		}
	}
	return false
}

// gateOpen is true when the gate was not asked (no hooks) or said yes.
func gateOpen(res *CheckResults, kind string) bool {
	open, asked := res.GatesOpen[kind]
	return !asked || open
}
