package canary

import (
	"fmt"
	"testing"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// fuzzPhases are the phases a fuzzed status starts from.
var fuzzPhases = []sluicev1beta1.CanaryPhase{
	"", dtPhInitializing, dtPhInitialized, dtPhWaiting, dtPhProgressing, dtPhWaitingPromotion,
	dtPhPromoting, dtPhFinalising, dtPhSucceeded, dtPhFailed, dtPhTerminating, dtPhTerminated,
}

// fuzzOutcomes are the outcomes a fuzzed check has.
var fuzzOutcomes = []sluicev1beta1.CheckOutcome{
	sluicev1beta1.CheckPassed, sluicev1beta1.CheckFailed, sluicev1beta1.CheckError, sluicev1beta1.CheckNoData, sluicev1beta1.CheckSkipped,
	sluicev1beta1.CheckInconclusive,
}

// fuzzInput decodes the fuzzer's values into an observation, the way the
// reconciler builds one: a Canary with a status, workloads, and the checks
// when Decide asks for them (the second call).
type fuzzInput struct {
	strategy, phase, weight, failed, iterations uint8
	bits                                        uint16
	stepAgo, notReadyAgo, heldAgo, skew         int16
	outcome, threshold                          uint8
}

func (in fuzzInput) bit(i int) bool { return in.bits&(1<<i) != 0 }

func (in fuzzInput) observation() Observation {
	var a *sluicev1beta1.CanaryAnalysis
	switch in.strategy % 4 {
	case 0:
		a = dtProgressive()
	case 1:
		a = dtStepWeights()
	case 2:
		a = dtBlueGreen()
	default:
		a = dtAbTesting()
	}
	a.Threshold = int32(in.threshold%5) + 1
	a.SuccessLimit = int32(in.threshold/5) % 4 // 0 (unset) to 3
	if in.bit(0) {
		a.Mirror = true
	}
	// A baseline goes with the progressive strategies (the CRD refuses it
	// with the others).
	a.Baseline = in.bit(15) && in.strategy%4 < 2
	var opts []dtCanaryOpt
	if in.bit(1) {
		opts = append(opts, dtHooks(dtHookConfirmPromote, dtHookConfirmTraffic, dtHookRollback))
	}
	if in.bit(2) {
		opts = append(opts, dtAnnotate(dtAnnotationPromote, "1"))
	}
	if in.bit(3) {
		opts = append(opts, dtAnnotate(dtAnnotationAbort, "1"))
	}
	phase := fuzzPhases[int(in.phase)%len(fuzzPhases)]
	c := dtCanary(a, dtStatus(phase), opts...)
	st := &c.Status
	maxWeight := c.MaxWeight()
	st.CanaryWeight = int32(in.weight) % (maxWeight + 1)
	if a.Baseline && (phase == dtPhProgressing || phase == dtPhWaitingPromotion) {
		st.BaselineWeight = st.CanaryWeight
	}
	st.FailedChecks = int32(in.failed) % a.Threshold // below the threshold, as a status Decide wrote
	st.Iterations = int32(in.iterations % 5)
	st.LastStepTime = dtAgo(time.Duration(in.stepAgo) * time.Second)
	if in.bit(4) {
		st.NotReadySince = dtAgo(time.Duration(in.notReadyAgo) * time.Second)
	}
	if in.bit(5) {
		st.HeldSince = dtAgo(time.Duration(in.heldAgo) * time.Second)
	}
	if in.iterations&8 != 0 {
		st.InconclusiveSince = dtAgo(time.Duration(in.heldAgo) * time.Second)
	}
	st.ConsecutiveSuccesses = int32(in.failed / 16 % 4)
	if in.bit(6) {
		st.LastTransitionTime = dtAgo(time.Duration(in.skew) * time.Second)
	}
	var obs []dtObsOpt
	if in.bit(7) {
		obs = append(obs, dtTargetNotReady("crash loop"))
	}
	if in.bit(8) {
		obs = append(obs, dtPrimaryNotReady("rolling out"))
	}
	if in.bit(9) {
		obs = append(obs, dtTargetHash(dtHashC))
	}
	if in.bit(10) {
		obs = append(obs, dtSlotBusy())
	}
	if in.bit(11) {
		obs = append(obs, dtDeleting())
	}
	if in.bit(12) {
		obs = append(obs, dtProvider(dtProviderKubernetes))
	}
	return dtObserve(c, obs...)
}

// checks are the outcomes of the checks Decide asked for.
func (in fuzzInput) checks(req *CheckRequest) *CheckResults {
	res := &CheckResults{GatesOpen: map[string]bool{}, RollbackRequested: in.bit(13) && req.Rollback}
	for _, g := range req.Gates {
		res.GatesOpen[g] = in.bit(14)
	}
	if req.Analysis != "" {
		c := dtMetric(fuzzOutcomes[int(in.outcome)%len(fuzzOutcomes)])
		c.Held = in.bit(15) && c.Outcome == sluicev1beta1.CheckError
		c.DryRun = in.outcome&64 != 0 && !c.Held
		res.Checks = append(res.Checks, c, dtWebhook(sluicev1beta1.CheckPassed))
	}
	return res
}

// FuzzDecide drives Decide with random observations, as the reconciler
// does (a second call with the checks when the first asks for them), and
// checks the invariants every decision keeps.
func FuzzDecide(f *testing.F) {
	// Seeds: a canary step, a failing step at the threshold, a held step past
	// the deadline, a stale status, a blue/green promotion, a deletion.
	f.Add(uint8(0), uint8(4), uint8(10), uint8(0), uint8(0), uint16(0), int16(60), int16(0), int16(0), int16(0), uint8(0), uint8(1))
	f.Add(uint8(0), uint8(4), uint8(20), uint8(1), uint8(0), uint16(0), int16(60), int16(0), int16(0), int16(0), uint8(1), uint8(1))
	f.Add(uint8(1), uint8(5), uint8(50), uint8(0), uint8(0), uint16(1<<15|1<<5), int16(60), int16(0), int16(900), int16(0), uint8(2), uint8(2))
	f.Add(uint8(0), uint8(4), uint8(10), uint8(0), uint8(0), uint16(1<<6), int16(60), int16(0), int16(0), int16(-30), uint8(0), uint8(1))
	f.Add(uint8(2), uint8(6), uint8(0), uint8(0), uint8(3), uint16(0), int16(60), int16(0), int16(0), int16(0), uint8(0), uint8(3))
	f.Add(uint8(3), uint8(9), uint8(0), uint8(0), uint8(0), uint16(1<<11|1<<7), int16(0), int16(700), int16(0), int16(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, strategy, phase, weight, failed, iterations uint8, bits uint16,
		stepAgo, notReadyAgo, heldAgo, skew int16, outcome, threshold uint8) {
		in := fuzzInput{strategy: strategy, phase: phase, weight: weight, failed: failed, iterations: iterations, bits: bits,
			stepAgo: stepAgo, notReadyAgo: notReadyAgo, heldAgo: heldAgo, skew: skew, outcome: outcome, threshold: threshold}
		o := in.observation()
		d := Decide(o)
		if d.NeedChecks != nil {
			if len(d.Actions) > 0 || len(d.Events) > 0 {
				t.Fatalf("asked for checks and acted: %v %v", d.Actions, d.Events)
			}
			o.Checks = in.checks(d.NeedChecks)
			d = Decide(o)
			if d.NeedChecks != nil {
				t.Fatalf("asked for checks twice: %+v", d.NeedChecks)
			}
		}
		if err := decisionInvariants(o, d); err != nil {
			t.Fatalf("%v\nobservation: %+v\nstatus: %+v\ndecision: %+v", err, o, o.Canary.Status, d)
		}
	})
}

// decisionInvariants are what every decision keeps, whatever it observed.
func decisionInvariants(o Observation, d Decision) error {
	c, in, st := o.Canary, &o.Canary.Status, &d.Status
	// Traffic: weights add up to 100 and, in analysis, stay within maxWeight
	// (blue/green and A/B send the matching or all traffic to the canary,
	// and a failed promotion leaves it on the good canary: up to 100).
	limit := int32(100)
	if c.Strategy(o.Provider) == sluicev1beta1.StrategyCanary && in.Phase != dtPhPromoting && in.Phase != dtPhFinalising {
		limit = c.MaxWeight()
	}
	for _, a := range d.Actions {
		if a.Kind != SetRoutes {
			continue
		}
		r := a.Routes
		if r.CanaryWeight < 0 || r.PrimaryWeight < 0 || r.CanaryWeight+r.PrimaryWeight+r.BaselineWeight != 100 || r.CanaryWeight > limit {
			return fmt.Errorf("routes %s outside [0, %d] or not adding up to 100", r, limit)
		}
		// The baseline gets the canary's weight or nothing, and status says which.
		if (r.BaselineWeight != 0 && r.BaselineWeight != r.CanaryWeight) || (r.BaselineWeight != 0 && !c.BaselineEnabled()) || st.BaselineWeight != r.BaselineWeight {
			return fmt.Errorf("routes %s with a baseline weight that is not the canary's (status %d)", r, st.BaselineWeight)
		}
	}
	if st.CanaryWeight < 0 || st.CanaryWeight > limit {
		return fmt.Errorf("status weight %d outside [0, %d]", st.CanaryWeight, limit)
	}
	// Never promote with failed checks at the threshold: such a step rolls back.
	if o.Checks != nil && len(failures(o.Checks.Checks)) > 0 && in.FailedChecks+1 >= c.Threshold() {
		for _, a := range d.Actions {
			if a.Kind == PromotePrimary {
				return fmt.Errorf("promoted with %d failed checks at threshold %d", in.FailedChecks+1, c.Threshold())
			}
		}
		if st.Phase == dtPhPromoting || st.Phase == dtPhSucceeded {
			return fmt.Errorf("phase %s with failed checks at the threshold", st.Phase)
		}
	}
	// A held analysis never outlives the progress deadline at a partial weight.
	if o.Checks != nil && st.HeldSince != nil && o.Now.Sub(st.HeldSince.Time) >= c.ProgressDeadline() {
		return fmt.Errorf("held since %s, past the deadline %s", st.HeldSince, c.ProgressDeadline())
	}
	// An inconclusive pause never outlives the progress deadline, and never
	// moves traffic while it lasts.
	if st.InconclusiveSince != nil && inAnalysis[st.Phase] && inAnalysis[in.Phase] && !o.Deleting && statusAhead(o) <= 0 {
		if o.Now.Sub(st.InconclusiveSince.Time) >= c.ProgressDeadline() {
			return fmt.Errorf("inconclusive since %s, past the deadline %s", st.InconclusiveSince, c.ProgressDeadline())
		}
		if in.InconclusiveSince != nil && st.CanaryWeight != in.CanaryWeight {
			return fmt.Errorf("the weight moved from %d to %d during an inconclusive pause", in.CanaryWeight, st.CanaryWeight)
		}
	}
	// A dry-run check never counts a failure.
	if o.Checks != nil && st.FailedChecks > in.FailedChecks && len(failures(o.Checks.Checks)) == 0 {
		return fmt.Errorf("failed checks grew from %d to %d with no failure but dry runs", in.FailedChecks, st.FailedChecks)
	}
	// A stale observation (the status records a later time) does nothing.
	if statusAhead(o) > 0 && !o.Deleting {
		if len(d.Actions) > 0 || len(d.Events) > 0 || d.RemoveFinalizer || d.RequeueAfter <= 0 {
			return fmt.Errorf("acted on a stale observation: %v %v", d.Actions, d.Events)
		}
	}
	if err := deliveryInvariants(in, st); err != nil {
		return err
	}
	return nil
}
