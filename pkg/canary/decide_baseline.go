package canary

import (
	"fmt"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// reasonBaselineNotReady is the reason of waiting for the baseline's pods.
const reasonBaselineNotReady = "BaselineNotReady"

// baselineWanted tells whether the release runs a baseline: asked for, and
// a progressive canary (router.Unsupported stalls the other strategies).
func (x *decider) baselineWanted() bool {
	return x.c.BaselineEnabled() && x.c.Strategy(x.o.Provider) == sluicev1beta1.StrategyCanary
}

// withBaseline gives the baseline the canary's weight, taken from the
// primary, while the analysis runs (10% canary is 80/10/10); promotion and
// rollback route to two backends again.
func (x *decider) withBaseline(r router.Routes) router.Routes {
	switch x.st.Phase {
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion:
	default:
		return r
	}
	if !x.baselineWanted() || r.CanaryWeight <= 0 {
		return r
	}
	b := min(r.CanaryWeight, r.PrimaryWeight)
	r.PrimaryWeight -= b
	r.BaselineWeight = b
	return r
}

// ensureBaseline creates or updates the baseline while a release runs.
func (x *decider) ensureBaseline() {
	if x.baselineWanted() {
		x.act(Action{Kind: EnsureBaseline})
	}
}

// removeBaseline deletes a baseline that receives no traffic any more,
// once the traffic has drained from it.
func (x *decider) removeBaseline() {
	if x.o.Baseline.Exists && x.st.BaselineWeight == 0 && x.drained() {
		x.act(Action{Kind: RemoveBaseline})
	}
}

// waitForBaseline holds the analysis until the baseline is ready, within
// the progress deadline (counted like the canary's): it must take traffic
// at the first weight step. It tells whether the step waits.
func (x *decider) waitForBaseline() bool {
	if !x.baselineWanted() || x.o.Baseline.Ready {
		return false
	}
	msg := "waiting for the baseline " + x.c.BaselineName() + " to be created"
	if x.o.Baseline.Exists {
		msg = "waiting for the baseline to be ready: " + x.o.Baseline.NotReadyMessage
	}
	left := x.deadlineLeft()
	if left <= 0 {
		x.rollback("ProgressDeadlineExceeded", fmt.Sprintf("The baseline did not become ready within %s: %s", x.c.ProgressDeadline(), msg))
		return true
	}
	x.waitReason = &Reason{Reason: reasonBaselineNotReady, Message: msg}
	x.requeue(min(left, waitRetry))
	return true
}
