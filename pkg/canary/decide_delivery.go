package canary

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The delivery record (DORA figures): Decide compares the status it read
// with the one it is about to write, and records in the latter when a
// release started, first failed a check and ended. The record is written by
// the status patch of the transition itself, so it is counted once: a
// conflicting patch writes nothing, and the decision taken again on the new
// status finds the transition still to record; a patch that succeeded leaves
// a status in which the transition is already recorded.

// inAnalysis are the phases of a running analysis, from which a release
// started again is a new one (a revision replacing the one under release).
var inAnalysis = map[sluicev1beta1.CanaryPhase]bool{
	sluicev1beta1.CanaryPhaseProgressing:      true,
	sluicev1beta1.CanaryPhaseWaitingPromotion: true,
}

// releaseRunning are the phases in which a release has not ended.
var releaseRunning = map[sluicev1beta1.CanaryPhase]bool{
	sluicev1beta1.CanaryPhaseProgressing:      true,
	sluicev1beta1.CanaryPhaseWaitingPromotion: true,
	sluicev1beta1.CanaryPhasePromoting:        true,
	sluicev1beta1.CanaryPhaseFinalising:       true,
}

// rollbackCauses maps the reasons of the rollback decisions to their cause.
var rollbackCauses = map[string]sluicev1beta1.RollbackCause{
	"ThresholdReached":         sluicev1beta1.RollbackAnalysis,
	reasonHoldExpired:          sluicev1beta1.RollbackAnalysis,
	reasonInconclusiveExpired:  sluicev1beta1.RollbackAnalysis,
	"Aborted":                  sluicev1beta1.RollbackAborted,
	"RollbackRequested":        sluicev1beta1.RollbackWebhook,
	"ProgressDeadlineExceeded": sluicev1beta1.RollbackProgressDeadline,
	reasonPromotionFailed:      sluicev1beta1.RollbackPromotionFailed,
}

// recordDelivery records the start, the first failure and the end of a
// release in the status to write.
func (x *decider) recordDelivery() {
	prev, st := &x.c.Status, x.st
	started := st.Phase == sluicev1beta1.CanaryPhaseProgressing &&
		(!inAnalysis[prev.Phase] || prev.Revision != st.Revision)
	if started {
		x.endRelease(sluicev1beta1.DeliverySuperseded, "")
		st.ReleaseStartTime, st.FirstFailureTime = x.second(), nil
		d := delivery(st)
		d.ReleasesStarted++
		d.Releases = append(d.Releases, sluicev1beta1.DeliveryRecord{
			Revision: st.Revision, StartTime: *x.second(), Outcome: sluicev1beta1.DeliveryRunning,
		})
		if n := len(d.Releases); n > sluicev1beta1.DeliveryRecordLimit {
			d.Releases = d.Releases[n-sluicev1beta1.DeliveryRecordLimit:]
		}
	}
	rec := running(st)
	if rec == nil {
		return
	}
	if rec.SourceRevision == "" {
		// The source may be recorded after the start (by the reconcile
		// that reads the GitSync annotations): taken whenever it is there.
		recordSource(rec, st.Source)
	}
	if st.FailedChecks > prev.FailedChecks && st.FirstFailureTime == nil {
		st.FirstFailureTime = x.second()
	}
	rec.FirstFailureTime = st.FirstFailureTime.DeepCopy()
	if releaseRunning[st.Phase] {
		return
	}
	switch {
	case st.Phase == sluicev1beta1.CanaryPhaseSucceeded && prev.Phase == sluicev1beta1.CanaryPhaseFinalising:
		x.endRelease(sluicev1beta1.DeliveryPromoted, "")
	case st.Phase == sluicev1beta1.CanaryPhaseFailed && prev.Phase == sluicev1beta1.CanaryPhasePromoting:
		x.endRelease(sluicev1beta1.DeliveryFailed, sluicev1beta1.RollbackPromotionFailed)
	case st.Phase == sluicev1beta1.CanaryPhaseFailed && x.stalled != nil && rollbackCauses[x.stalled.Reason] != "":
		x.endRelease(sluicev1beta1.DeliveryRolledBack, rollbackCauses[x.stalled.Reason])
	default: // back on the promoted revision, deleted, withdrawn
		x.endRelease(sluicev1beta1.DeliveryCancelled, "")
	}
}

// endRelease ends the running release, if any, with an outcome, and counts
// promotions and rollbacks.
func (x *decider) endRelease(outcome sluicev1beta1.DeliveryOutcome, cause sluicev1beta1.RollbackCause) {
	rec := running(x.st)
	if rec == nil {
		return
	}
	d := delivery(x.st)
	end := x.second()
	rec.EndTime, rec.Outcome, rec.Cause = end, outcome, cause
	switch outcome {
	case sluicev1beta1.DeliveryPromoted:
		d.Promotions++
		if rec.CommitTime != nil {
			rec.LeadTimeSeconds = seconds(end.Sub(rec.CommitTime.Time).Seconds())
		}
	case sluicev1beta1.DeliveryRolledBack, sluicev1beta1.DeliveryFailed:
		countRollback(&d.Rollbacks, cause)
		if outcome == sluicev1beta1.DeliveryRolledBack && rec.FirstFailureTime != nil {
			rec.TimeToRestoreSeconds = seconds(end.Sub(rec.FirstFailureTime.Time).Seconds())
		}
	}
}

// second is now to the second, as status keeps times: the durations
// computed now are those computed later from the status written.
func (x *decider) second() *metav1.Time {
	t := metav1.NewTime(x.o.Now.Truncate(time.Second))
	return &t
}

// running is the record of the release in progress, or nil.
func running(st *sluicev1beta1.CanaryStatus) *sluicev1beta1.DeliveryRecord {
	if st.Delivery == nil || len(st.Delivery.Releases) == 0 {
		return nil
	}
	rec := &st.Delivery.Releases[len(st.Delivery.Releases)-1]
	if rec.Outcome != sluicev1beta1.DeliveryRunning {
		return nil
	}
	return rec
}

func delivery(st *sluicev1beta1.CanaryStatus) *sluicev1beta1.DeliveryStatus {
	if st.Delivery == nil {
		st.Delivery = &sluicev1beta1.DeliveryStatus{}
	}
	return st.Delivery
}

// recordSource copies the Git source of the release, when it is this release's.
func recordSource(rec *sluicev1beta1.DeliveryRecord, src *sluicev1beta1.ReleaseSource) {
	if src == nil || src.Release != rec.Revision || src.Revision == "" {
		return
	}
	rec.SourceRevision = src.Revision
	rec.GitSync = src.GitSyncNamespace + "/" + src.GitSyncName
	rec.CommitTime = src.CommitTime.DeepCopy()
	rec.AppliedTime = src.AppliedTime.DeepCopy()
}

func countRollback(r *sluicev1beta1.RollbackCounts, cause sluicev1beta1.RollbackCause) {
	switch cause {
	case sluicev1beta1.RollbackAnalysis:
		r.Analysis++
	case sluicev1beta1.RollbackAborted:
		r.Aborted++
	case sluicev1beta1.RollbackWebhook:
		r.Webhook++
	case sluicev1beta1.RollbackProgressDeadline:
		r.ProgressDeadline++
	case sluicev1beta1.RollbackPromotionFailed:
		r.PromotionFailed++
	}
}

// seconds rounds a duration in seconds to a whole, non-negative number: the
// times it is measured between are recorded to the second, and a commit
// time ahead of the cluster's clock is not a negative lead time.
func seconds(s float64) *int64 {
	v := int64(math.Max(0, math.Round(s)))
	return &v
}
