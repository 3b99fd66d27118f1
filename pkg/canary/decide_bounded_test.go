package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// dtHeldSince starts the hold d ago.
func dtHeldSince(d time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.HeldSince = dtAgo(d) }
}

// dtRejected records the rollback of the revision in status as the last step.
func dtRejected() dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		s.History = append(s.History, sluicev1beta1.CanaryStep{Phase: dtPhFailed, Message: "Rolling back: 2 failed checks reached the threshold"})
	}
}

// TestDecide_Bounded checks that no wait is endless: a held analysis and a
// deletion end at the progress deadline, and a deletion in Failed restores
// the promoted revision first.
func TestDecide_Bounded(t *testing.T) {
	held := dtResults(sluicev1beta1.CheckResult{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckError, Held: true, Message: "connection refused"})
	dtRunCases(t, []dtDecideCase{
		{
			name:        "first held step: the hold starts, Reconciling says so",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtWithChecks(held)),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("CheckHeld"),
			wantConds:   dtReleasing("CheckHeld"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HeldSince.Time).To(Equal(dtNow))
			},
		},
		{
			name:             "held past the deadline: rolled back, Stalled HoldExpired",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtHeldSince(dtDefaultDeadline))), dtWithChecks(held)),
			wantPhase:        dtPhFailed,
			wantRoutes:       dtRoutes(100, 0),
			wantActions:      dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue:      maxDrain,
			wantEvents:       dtEvs(reasonHoldExpired, "Failed"),
			wantConds:        dtFailed(reasonHoldExpired),
			wantFailedChecks: 0,
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HeldSince).To(BeNil())
			},
		},
		{
			name:        "a step evaluated again ends the hold",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtHeldSince(time.Minute))), dtWithChecks(dtPassing())),
			wantPhase:   dtPhProgressing,
			wantWeight:  30,
			wantRoutes:  dtRoutes(70, 30),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing("Progressing"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.HeldSince).To(BeNil())
			},
		},
		{
			name:        "deleted in Failed with the rejected revision on the target: the promoted template is restored first",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtRejected())), dtDeleting(), dtTargetScaledToZero(true)),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(RestoreTargetTemplate),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("RestoringPromotedRevision"),
		},
		{
			name:        "deleted after a failed promotion (the good canary serves): no restore",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed)), dtDeleting(), dtTargetNotReady("0/1")),
			wantPhase:   dtPhTerminating,
			wantActions: dtActs(ScaleTargetUp),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs("Terminating"),
			wantConds:   dtReleasing("TargetNotReady"),
		},
		{
			name: "target not ready past the deadline of the deletion: the primary is released and left serving",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhTerminating, dtNotReadyFor(dtDefaultDeadline))),
				dtDeleting(), dtTargetNotReady("0/1 available")),
			wantPhase:        dtPhTerminated,
			wantActions:      dtActs(ScaleTargetUp, ReleasePrimary, FinalizeRoutes),
			wantEvents:       dtEvs("TargetNotReady", "Terminated"),
			wantConds:        dtConds{reason: string(dtPhTerminated), stalled: "TargetNotReady"},
			wantFinalizerOff: true,
		},
	})
	// A status written later than this clock: nothing is done until it catches up.
	t.Run("stale", func(t *testing.T) {
		g := NewWithT(t)
		c := dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtLastStep(-3*time.Second)))
		d := Decide(dtObserve(c, dtWithChecks(dtPassing())))
		g.Expect(d.Actions).To(BeEmpty())
		g.Expect(d.Events).To(BeEmpty())
		g.Expect(d.Status).To(Equal(c.Status))
		g.Expect(d.RequeueAfter).To(Equal(3 * time.Second))
	})
}
