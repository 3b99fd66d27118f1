package canary

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ddSim drives Decide through a release the way the reconciler would: one
// decision per analysis interval, the checks answered, the decided status
// patched, the workloads following the actions.
type ddSim struct {
	t   *testing.T
	c   *sluicev1beta1.Canary
	now time.Time
	// target is the template hash the target runs.
	target string
}

func ddNewSim(t *testing.T, opts ...dtCanaryOpt) *ddSim {
	return &ddSim{t: t, c: dtCanary(dtProgressive(), dtStatus(dtPhSucceeded), opts...), now: dtNow, target: dtHashA}
}

// decide takes one decision at the current time, answering checks with res.
func (s *ddSim) decide(res *CheckResults, opts ...dtObsOpt) Decision {
	st := s.c.Status
	base := []dtObsOpt{dtAt(s.now), dtTargetHash(s.target)}
	if st.Phase == dtPhFinalising || st.Phase == dtPhSucceeded || st.Phase == dtPhFailed {
		base = append(base, dtTargetScaledToZero(st.Phase != dtPhFinalising || s.c.Status.LastTransitionTime.Add(maxDrain).Before(s.now)))
	}
	_, d := dtDecideAnswering(dtObserve(s.c, append(base, opts...)...), res)
	s.c = dtWithStatus(s.c, d)
	return d
}

// until decides once per interval until the phase is one of want.
func (s *ddSim) until(res *CheckResults, want ...sluicev1beta1.CanaryPhase) {
	s.t.Helper()
	for range 20 {
		s.now = s.now.Add(dtInterval)
		s.decide(res)
		for _, p := range want {
			if s.c.Status.Phase == p {
				return
			}
		}
	}
	s.t.Fatalf("phase %s never became one of %v", s.c.Status.Phase, want)
}

// release starts the release of hash and returns its start time.
func (s *ddSim) release(hash string) time.Time {
	s.t.Helper()
	s.target = hash
	s.now = s.now.Add(dtInterval)
	s.decide(dtPassing())
	NewWithT(s.t).Expect(s.c.Status.Phase).To(Equal(dtPhProgressing))
	return s.now
}

func ddTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

// Given a release of a new revision with a Git source, the engine records
// when it started, nothing as a failure, and when the promotion finished,
// with a lead time of promotion time - commit time, to the second.
func TestDecide_DeliveryPromotion(t *testing.T) {
	g := NewWithT(t)
	s := ddNewSim(t)
	start := s.release(dtHashB)
	g.Expect(s.c.Status.ReleaseStartTime).To(Equal(ddTime(start)))
	g.Expect(s.c.Status.FirstFailureTime).To(BeNil())
	g.Expect(s.c.Status.Delivery.ReleasesStarted).To(Equal(int64(1)))
	g.Expect(s.c.Status.Delivery.Releases).To(HaveLen(1))
	g.Expect(s.c.Status.Delivery.Releases[0].Outcome).To(Equal(sluicev1beta1.DeliveryRunning))

	// The Git source, recorded after the start (as the reconcile that
	// reads the GitSync annotations may), is taken into the record.
	commit := start.Add(-10*time.Minute - 400*time.Millisecond)
	applied := start.Add(-2 * time.Minute)
	s.c.Status.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "apps", GitSyncNamespace: "flux", Revision: "main@sha1:0123abc",
		CommitTime: ddTime(commit), AppliedTime: ddTime(applied), Release: s.c.Status.Revision}
	s.until(dtPassing(), dtPhSucceeded, dtPhFailed)

	g.Expect(s.c.Status.Phase).To(Equal(dtPhSucceeded))
	d := s.c.Status.Delivery
	g.Expect(d.ReleasesStarted).To(Equal(int64(1)))
	g.Expect(d.Promotions).To(Equal(int64(1)))
	g.Expect(d.Rollbacks).To(Equal(sluicev1beta1.RollbackCounts{}))
	rec := d.Releases[0]
	g.Expect(rec.Outcome).To(Equal(sluicev1beta1.DeliveryPromoted))
	g.Expect(rec.SourceRevision).To(Equal("main@sha1:0123abc"))
	g.Expect(rec.GitSync).To(Equal("flux/apps"))
	g.Expect(rec.StartTime).To(Equal(*ddTime(start)))
	g.Expect(rec.EndTime).To(Equal(ddTime(s.now)))
	g.Expect(rec.CommitTime).To(Equal(ddTime(commit)))
	g.Expect(rec.AppliedTime).To(Equal(ddTime(applied)))
	g.Expect(rec.LeadTimeSeconds).To(Equal(ptr.To(int64(s.now.Sub(commit).Round(time.Second).Seconds()))))
	g.Expect(rec.TimeToRestoreSeconds).To(BeNil())
	g.Expect(s.c.Status.ReleaseStartTime).To(Equal(ddTime(start)), "kept after the release, for the figures")

	// Later decisions of the Succeeded Canary count nothing again.
	before := s.c.Status.Delivery.DeepCopy()
	s.until(dtPassing(), dtPhSucceeded)
	s.now = s.now.Add(time.Hour)
	s.decide(dtPassing())
	g.Expect(s.c.Status.Delivery).To(Equal(before))
}

// Given failed checks up to the threshold, the first failure is recorded at
// the first failed check (not moved by the second), the release is rolled
// back by the analysis, and the time to restore runs from the first failure
// to the rollback that put all traffic back on the primary.
func TestDecide_DeliveryRollbackByAnalysis(t *testing.T) {
	g := NewWithT(t)
	s := ddNewSim(t)
	s.release(dtHashB)
	s.until(dtPassing(), dtPhProgressing) // weight 10
	failing := dtResults(dtMetric(sluicev1beta1.CheckFailed))
	s.now = s.now.Add(dtInterval)
	s.decide(failing)
	first := s.now
	g.Expect(s.c.Status.FailedChecks).To(Equal(int32(1)))
	g.Expect(s.c.Status.FirstFailureTime).To(Equal(ddTime(first)))
	s.now = s.now.Add(dtInterval)
	s.decide(failing)
	g.Expect(s.c.Status.Phase).To(Equal(dtPhFailed))
	g.Expect(s.c.Status.CanaryWeight).To(BeZero())
	g.Expect(s.c.Status.FirstFailureTime).To(Equal(ddTime(first)))
	d := s.c.Status.Delivery
	g.Expect(d.Rollbacks).To(Equal(sluicev1beta1.RollbackCounts{Analysis: 1}))
	g.Expect(d.Promotions).To(BeZero())
	rec := d.Releases[0]
	g.Expect(rec.Outcome).To(Equal(sluicev1beta1.DeliveryRolledBack))
	g.Expect(rec.Cause).To(Equal(sluicev1beta1.RollbackAnalysis))
	g.Expect(rec.FirstFailureTime).To(Equal(ddTime(first)))
	g.Expect(rec.TimeToRestoreSeconds).To(Equal(ptr.To(int64(dtInterval.Seconds()))))
	g.Expect(rec.LeadTimeSeconds).To(BeNil())

	// A retry is a release of its own, with its own start and no failure yet.
	s.c.Annotations = map[string]string{dtAnnotationRetry: "1"}
	s.now = s.now.Add(dtInterval)
	s.decide(dtPassing())
	g.Expect(s.c.Status.Phase).To(Equal(dtPhProgressing))
	g.Expect(s.c.Status.ReleaseStartTime).To(Equal(ddTime(s.now)))
	g.Expect(s.c.Status.FirstFailureTime).To(BeNil())
	g.Expect(s.c.Status.Delivery.ReleasesStarted).To(Equal(int64(2)))
	g.Expect(s.c.Status.Delivery.Releases).To(HaveLen(2))
}

// Every way a release ends is recorded with its outcome and cause.
func TestDecide_DeliveryOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		end         func(s *ddSim)
		wantOutcome sluicev1beta1.DeliveryOutcome
		wantCause   sluicev1beta1.RollbackCause
		wantCounts  sluicev1beta1.RollbackCounts
	}{{
		name: "aborted by a person",
		end: func(s *ddSim) {
			s.c.Annotations = map[string]string{dtAnnotationAbort: "now"}
			s.now = s.now.Add(dtInterval)
			s.decide(dtPassing())
		},
		wantOutcome: sluicev1beta1.DeliveryRolledBack, wantCause: sluicev1beta1.RollbackAborted,
		wantCounts: sluicev1beta1.RollbackCounts{Aborted: 1},
	}, {
		name: "rolled back by a rollback webhook",
		end: func(s *ddSim) {
			s.c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: dtHookRollback, URL: "http://gate"}}
			s.now = s.now.Add(dtInterval)
			s.decide(dtRollbackRequested())
		},
		wantOutcome: sluicev1beta1.DeliveryRolledBack, wantCause: sluicev1beta1.RollbackWebhook,
		wantCounts: sluicev1beta1.RollbackCounts{Webhook: 1},
	}, {
		name: "canary not ready within the progress deadline",
		end: func(s *ddSim) {
			// The not-ready clock started with the release.
			s.now = s.now.Add(2 * dtDefaultDeadline)
			s.decide(dtPassing(), dtTargetNotReady("pods pending"))
		},
		wantOutcome: sluicev1beta1.DeliveryRolledBack, wantCause: sluicev1beta1.RollbackProgressDeadline,
		wantCounts: sluicev1beta1.RollbackCounts{ProgressDeadline: 1},
	}, {
		name: "promoted primary not ready within the progress deadline",
		end: func(s *ddSim) {
			s.until(dtPassing(), dtPhPromoting)
			s.now = s.now.Add(2 * dtDefaultDeadline)
			s.decide(dtPassing(), dtPrimaryNotReady("image pull"))
		},
		wantOutcome: sluicev1beta1.DeliveryFailed, wantCause: sluicev1beta1.RollbackPromotionFailed,
		wantCounts: sluicev1beta1.RollbackCounts{PromotionFailed: 1},
	}, {
		name: "target back on the promoted revision",
		end: func(s *ddSim) {
			s.target = dtHashA
			s.now = s.now.Add(dtInterval)
			s.decide(dtPassing())
		},
		wantOutcome: sluicev1beta1.DeliveryCancelled,
	}, {
		name: "Canary deleted",
		end: func(s *ddSim) {
			s.now = s.now.Add(dtInterval)
			s.decide(dtPassing(), dtDeleting())
		},
		wantOutcome: sluicev1beta1.DeliveryCancelled,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := ddNewSim(t)
			s.release(dtHashB)
			tt.end(s)
			d := s.c.Status.Delivery
			g.Expect(d.Releases).To(HaveLen(1))
			g.Expect(d.Releases[0].Outcome).To(Equal(tt.wantOutcome), "phase %s", s.c.Status.Phase)
			g.Expect(d.Releases[0].Cause).To(Equal(tt.wantCause))
			g.Expect(d.Releases[0].EndTime).To(Equal(ddTime(s.now)))
			g.Expect(d.Releases[0].TimeToRestoreSeconds).To(BeNil(), "no check failed")
			g.Expect(d.Rollbacks).To(Equal(tt.wantCounts))
			g.Expect(d.ReleasesStarted).To(Equal(int64(1)))
			g.Expect(d.Promotions).To(BeZero())
		})
	}
}

// Given a newer revision during the analysis, the release under way is
// superseded and a new one starts: a new start time, the first failure of
// the old one forgotten.
func TestDecide_DeliverySuperseded(t *testing.T) {
	g := NewWithT(t)
	s := ddNewSim(t)
	s.release(dtHashB)
	s.now = s.now.Add(dtInterval)
	s.decide(dtResults(dtMetric(sluicev1beta1.CheckFailed)))
	g.Expect(s.c.Status.FirstFailureTime).NotTo(BeNil())
	second := s.release(dtHashC)
	g.Expect(s.c.Status.ReleaseStartTime).To(Equal(ddTime(second)))
	g.Expect(s.c.Status.FirstFailureTime).To(BeNil())
	d := s.c.Status.Delivery
	g.Expect(d.ReleasesStarted).To(Equal(int64(2)))
	g.Expect(d.Releases).To(HaveLen(2))
	g.Expect(d.Releases[0].Outcome).To(Equal(sluicev1beta1.DeliverySuperseded))
	g.Expect(d.Releases[0].EndTime).To(Equal(ddTime(second)))
	g.Expect(d.Releases[1].Outcome).To(Equal(sluicev1beta1.DeliveryRunning))
	g.Expect(d.Releases[1].Revision).To(Equal(s.c.Status.Revision))
	g.Expect(d.Releases[0].Revision).NotTo(Equal(s.c.Status.Revision))
}

// Given more releases than the records kept, the counters count them all and
// the list keeps the newest 32.
func TestDecide_DeliveryRecordsBounded(t *testing.T) {
	g := NewWithT(t)
	s := ddNewSim(t)
	hashes := []string{dtHashB, dtHashC}
	for i := range 40 {
		s.release(hashes[i%2])
		s.until(dtPassing(), dtPhSucceeded)
	}
	d := s.c.Status.Delivery
	g.Expect(d.ReleasesStarted).To(Equal(int64(40)))
	g.Expect(d.Promotions).To(Equal(int64(40)))
	g.Expect(d.Releases).To(HaveLen(sluicev1beta1.DeliveryRecordLimit))
	for _, r := range d.Releases {
		g.Expect(r.Outcome).To(Equal(sluicev1beta1.DeliveryPromoted))
	}
}

// Given a decision whose status patch conflicted, the decision taken again
// on the same status records the transition once: Decide counts from the
// status it reads, never from what an earlier attempt computed.
func TestDecide_DeliveryCountedOncePerTransition(t *testing.T) {
	g := NewWithT(t)
	s := ddNewSim(t)
	s.target = dtHashB
	s.now = s.now.Add(dtInterval)
	read := s.c.DeepCopy()
	first := s.decide(dtPassing()) // its patch is lost to a conflict
	s.c = read
	again := s.decide(dtPassing())
	g.Expect(again.Status.Delivery).To(Equal(first.Status.Delivery))
	g.Expect(again.Status.Delivery.ReleasesStarted).To(Equal(int64(1)))
}

// deliveryInvariants are what every decision keeps of the delivery record
// (checked by FuzzDecide): the counters never go down and move by one at
// most, outcomes never outnumber starts, the records stay bounded, and only
// the newest may be running.
func deliveryInvariants(in, st *sluicev1beta1.CanaryStatus) error {
	before, after := in.Delivery, st.Delivery
	if after == nil {
		if before != nil {
			return fmt.Errorf("delivery record dropped")
		}
		return nil
	}
	if before == nil {
		before = &sluicev1beta1.DeliveryStatus{}
	}
	count := func(d *sluicev1beta1.DeliveryStatus) []int64 {
		r := d.Rollbacks
		return []int64{d.ReleasesStarted, d.Promotions, r.Analysis, r.Aborted, r.Webhook, r.ProgressDeadline, r.PromotionFailed}
	}
	b, a := count(before), count(after)
	ended := int64(0)
	for i := range a {
		if a[i] < b[i] || a[i] > b[i]+1 {
			return fmt.Errorf("delivery counter %d went from %d to %d", i, b[i], a[i])
		}
		if i > 0 {
			ended += a[i] - b[i]
		}
	}
	if ended > 1 {
		return fmt.Errorf("%d releases ended in one decision", ended)
	}
	if n := len(after.Releases); n > sluicev1beta1.DeliveryRecordLimit {
		return fmt.Errorf("%d release records", n)
	}
	for i, r := range after.Releases {
		if r.Outcome == sluicev1beta1.DeliveryRunning && i != len(after.Releases)-1 {
			return fmt.Errorf("record %d of %d is running", i, len(after.Releases))
		}
		if r.EndTime != nil && r.EndTime.Before(&r.StartTime) {
			return fmt.Errorf("record %d ends before it starts", i)
		}
	}
	return nil
}
