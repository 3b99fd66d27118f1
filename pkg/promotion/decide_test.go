package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A new tag goes dev → staging → production, each time only after the
// Canary of the stage before promoted exactly the release its commit
// started, and production receives the digest staging verified.
func TestDecide_BundleGoesThroughTheStagesInOrder(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("dev"), stage("staging", soak(10*time.Minute)), stage("production")))
	id := bundleIDOf("1.1.0")

	d := w.decide()
	g.Expect(d.Writes).To(BeEmpty(), "no image scanned yet")
	g.Expect(d.Status.Bundles).To(BeEmpty())

	w.push("1.1.0")
	d = w.decide()
	g.Expect(d.Writes).To(HaveLen(1))
	g.Expect(d.Writes[0].Stage).To(Equal("dev"))
	g.Expect(d.Writes[0].Bundle.ID).To(Equal(id))
	g.Expect(d.Writes[0].Bundle.Images[0].Digest).To(Equal(digestOf("1.1.0")))
	g.Expect(d.Writes[0].FromStage).To(BeEmpty())
	g.Expect(d.Writes[0].Message).To(ContainSubstring("promote web 1.1.0 to dev"))
	g.Expect(d.Writes[0].Message).To(ContainSubstring("Found in the registry"))
	g.Expect(d.Status.Bundles).To(HaveLen(1))
	g.Expect(d.Status.Bundles[0].ConfigRevision).To(HavePrefix("main@sha1:"))
	g.Expect(w.status("dev").State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(w.status("dev").Commit).To(Equal(commitFor("dev", id)))
	g.Expect(condition(d.Status, ConditionReady).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonProgressing))
	g.Expect(condition(d.Status, ConditionReconciling)).NotTo(BeNil())

	// The Canary releases another commit and promotes it: not a verdict on the bundle.
	w.releaseCommit("dev", commitFor("dev", "someone-else"), sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(w.status("dev").State).To(Equal(sluicev1beta1.StageCommitted))

	w.release("dev", sluicev1beta1.DeliveryRunning)
	w.decide()
	g.Expect(w.status("dev").State).To(Equal(sluicev1beta1.StageVerifying))
	g.Expect(w.status("dev").Release).To(Equal("r" + commitFor("dev", id)[:8]))

	w.release("dev", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(w.status("dev").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(d.Writes).To(HaveLen(1), "verified in dev: staging gets it in the same decision")
	g.Expect(d.Writes[0].Stage).To(Equal("staging"))
	g.Expect(d.Writes[0].FromStage).To(Equal("dev"))
	g.Expect(d.Writes[0].VerifiedBy).To(Equal("dev/web release r" + commitFor("dev", id)[:8] + " (commit " + commitFor("dev", id)[:12] + ")"))
	g.Expect(d.Writes[0].Message).To(ContainSubstring("Verified in dev by dev/web release"))

	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageSoaking))
	g.Expect(d.Writes).To(BeEmpty(), "staging soaks 10m before production")
	g.Expect(d.RequeueAfter).To(Equal(10 * time.Minute))

	w.now = w.now.Add(9 * time.Minute)
	d = w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.RequeueAfter).To(Equal(time.Minute))

	w.now = w.now.Add(time.Minute)
	d = w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(d.Writes).To(HaveLen(1))
	g.Expect(d.Writes[0].Stage).To(Equal("production"))
	g.Expect(d.Writes[0].Bundle.Images[0].Digest).To(Equal(digestOf("1.1.0")))
	g.Expect(d.Writes[0].FromStage).To(Equal("staging"))

	w.release("production", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(w.status("production").State).To(Equal(sluicev1beta1.StageVerified))
	ready := condition(d.Status, ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonSucceeded))
	g.Expect(condition(d.Status, ConditionReconciling)).To(BeNil())
	g.Expect(w.writes).To(HaveLen(3), "one write per stage, never repeated")

	// Nothing new: deciding again writes nothing.
	for range 3 {
		g.Expect(w.decide().Writes).To(BeEmpty())
	}
}

// A bundle rolled back in staging is Failed there, says why, and never
// reaches production; the next good bundle goes on.
func TestDecide_FailedBundleNeverReachesProduction(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	w.release("production", sluicev1beta1.DeliveryPromoted)
	w.decide()

	w.push("1.2.0")
	w.decide()
	bad := bundleIDOf("1.2.0")
	g.Expect(w.status("staging").Bundle).To(Equal(bad))
	w.release("staging", sluicev1beta1.DeliveryRolledBack)
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Expect(st.Message).To(ContainSubstring("rolled back release r" + commitFor("staging", bad)[:8]))
	g.Expect(st.Message).To(ContainSubstring("Analysis"))
	g.Expect(st.Release).To(Equal("r" + commitFor("staging", bad)[:8]))
	ready := condition(d.Status, ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Expect(d.Events).To(ContainElement(HaveField("Warning", true)))

	for range 5 {
		w.now = w.now.Add(time.Hour)
		w.decide()
	}
	for _, wr := range w.writesTo("production") {
		g.Expect(wr.Bundle.ID).NotTo(Equal(bad))
	}
	g.Expect(w.writesTo("staging")).To(HaveLen(2), "a failed bundle is not retried")

	w.push("1.3.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(d.Writes).To(HaveLen(1))
	g.Expect(d.Writes[0].Stage).To(Equal("production"))
	g.Expect(d.Writes[0].Bundle.ID).To(Equal(bundleIDOf("1.3.0")))
	g.Expect(w.status("staging").History).To(ContainElement(And(HaveField("Bundle", bad), HaveField("State", sluicev1beta1.StageFailed))))
}

// A release superseded or cancelled before its verdict verifies nothing.
func TestDecide_SupersededReleaseVerifiesNothing(t *testing.T) {
	for _, outcome := range []sluicev1beta1.DeliveryOutcome{sluicev1beta1.DeliverySuperseded, sluicev1beta1.DeliveryCancelled, sluicev1beta1.DeliveryFailed} {
		t.Run(string(outcome), func(t *testing.T) {
			g := NewWithT(t)
			w := newWorld(t, newPipeline(stage("staging"), stage("production")))
			w.push("1.1.0")
			w.decide()
			w.release("staging", outcome)
			d := w.decide()
			g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageFailed))
			g.Expect(d.Writes).To(BeEmpty())
		})
	}
}

// Another release during the soak interrupts it: the bundle is not verified.
func TestDecide_ReleaseDuringSoakFailsTheBundle(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging", soak(time.Hour)), stage("production")))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageSoaking))
	w.now = w.now.Add(30 * time.Minute)
	w.releaseCommit("staging", commitFor("staging", "hotfix"), sluicev1beta1.DeliveryRunning)
	w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonSuperseded))
	w.now = w.now.Add(time.Hour)
	g.Expect(w.decide().Writes).To(BeEmpty())
}

// A manual gate waits with WaitingForApproval and the command to approve;
// an approval is handled once and lets exactly that bundle through.
func TestDecide_ManualApprovalOnce(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", manual())))
	w.push("1.3.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d := w.decide()
	id := bundleIDOf("1.3.0")
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.Waits).To(ConsistOf(Wait{Stage: "production", Bundle: id, Reason: Reason{
		Reason:  sluicev1beta1.PipelineReasonWaitingForApproval,
		Message: "bundle " + id + " waits for approval: kubectl sluice promote-stage web production -n apps (sets sluice.dev/approve=production/" + id + ")",
	}}))
	g.Expect(w.status("production").Gate).To(HaveField("Reason", sluicev1beta1.PipelineReasonWaitingForApproval))
	ready := condition(d.Status, ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForApproval))

	// An approval of another stage or of an unknown bundle is refused, and handled.
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineApproveAnnotation: "staging/" + id}
	d = w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.Events).To(ContainElement(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonApprovalRejected)))
	g.Expect(d.Status.HandledRequests.Approve).To(Equal("staging/" + id))

	w.p.Annotations[sluicev1beta1.PipelineApproveAnnotation] = "production/" + id
	d = w.decide()
	g.Expect(d.Writes).To(HaveLen(1))
	g.Expect(d.Writes[0].Stage).To(Equal("production"))
	g.Expect(d.Writes[0].Bundle.ID).To(Equal(id))
	g.Expect(w.status("production").Approvals).To(ConsistOf(HaveField("Bundle", id)))
	g.Expect(w.status("production").Gate).To(BeNil())
	w.release("production", sluicev1beta1.DeliveryPromoted)
	w.decide()

	// The annotation left in place approves nothing else.
	w.push("1.4.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	for range 3 {
		d = w.decide()
		g.Expect(d.Writes).To(BeEmpty())
	}
	g.Expect(w.status("production").Gate).To(HaveField("Bundle", bundleIDOf("1.4.0")))
	g.Expect(w.writesTo("production")).To(HaveLen(1))
}

// A held stage is never written by automation; a rollback request still is.
func TestDecide_HoldStopsAutomation(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	w.release("production", sluicev1beta1.DeliveryPromoted)
	w.decide()
	good := bundleIDOf("1.1.0")

	w.stageSpec("production").Hold = &sluicev1beta1.PipelineHold{Reason: "incident 42"}
	w.push("1.2.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	for range 3 {
		d := w.decide()
		g.Expect(d.Writes).To(BeEmpty())
		g.Expect(d.Waits).To(ConsistOf(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonHeld)))
	}
	g.Expect(w.status("production").Gate.Message).To(ContainSubstring("incident 42"))

	// Held while a write was pending: the write is not made.
	w2 := newWorld(t, newPipeline(stage("staging")))
	w2.push("1.1.0")
	w2.failWrite["staging"] = Reason{Reason: sluicev1beta1.PipelineReasonGitUnreachable, Message: "dial tcp: connection refused"}
	w2.decide()
	g.Expect(w2.status("staging").State).To(Equal(sluicev1beta1.StagePending))
	w2.stageSpec("staging").Hold = &sluicev1beta1.PipelineHold{Reason: "freeze"}
	g.Expect(w2.decide().Writes).To(BeEmpty())
	g.Expect(w2.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonHeld))

	// The rollback of a held stage is written.
	w.push("1.3.0")
	w.stageSpec("production").Hold = nil
	w.decide()
	w.release("production", sluicev1beta1.DeliveryPromoted)
	w.decide()
	g.Expect(w.status("production").Bundle).To(Equal(bundleIDOf("1.2.0")))
	w.stageSpec("production").Hold = &sluicev1beta1.PipelineHold{Reason: "pinned"}
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineRollbackAnnotation: "production/" + good}
	d := w.decide()
	g.Expect(d.Writes).To(ConsistOf(And(HaveField("Stage", "production"), HaveField("Rollback", true), HaveField("Bundle.ID", good))))
}

// Rollback writes an earlier bundle verified in the stage, once, and
// automation then leaves it alone until a newer bundle is verified.
func TestDecide_Rollback(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	for _, tag := range []string{"1.1.0", "1.3.0"} {
		w.push(tag)
		w.decide()
		w.release("staging", sluicev1beta1.DeliveryPromoted)
		w.decide()
		w.release("production", sluicev1beta1.DeliveryPromoted)
		w.decide()
	}
	old, cur := bundleIDOf("1.1.0"), bundleIDOf("1.3.0")
	g.Expect(w.status("production").Bundle).To(Equal(cur))

	// A bundle never verified in production is refused.
	w.push("1.4.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryRolledBack)
	w.decide()
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineRollbackAnnotation: "production/" + bundleIDOf("1.4.0")}
	d := w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.Events).To(ContainElement(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonRollbackRejected)))

	w.p.Annotations[sluicev1beta1.PipelineRollbackAnnotation] = "production/" + old
	d = w.decide()
	g.Expect(d.Writes).To(HaveLen(1))
	g.Expect(d.Writes[0].Rollback).To(BeTrue())
	g.Expect(d.Writes[0].Bundle.ID).To(Equal(old))
	g.Expect(d.Writes[0].Message).To(HavePrefix("roll back web 1.1.0 to production"))
	st := w.status("production")
	g.Expect(st.Bundle).To(Equal(old))
	g.Expect(st.Rollback).To(BeTrue())
	g.Expect(st.History).To(ContainElement(And(HaveField("Bundle", cur), HaveField("State", sluicev1beta1.StageVerified))))
	g.Expect(d.Status.HandledRequests.RollbackTo).To(Equal("production/" + old))

	w.release("production", sluicev1beta1.DeliveryPromoted)
	for range 3 {
		w.now = w.now.Add(time.Hour)
		g.Expect(w.decide().Writes).To(BeEmpty(), "automation does not undo the rollback, and the request is handled once")
	}
	g.Expect(w.status("production").Bundle).To(Equal(old))

	// A newer bundle verified in staging goes to production again.
	w.push("1.5.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(d.Writes).To(ConsistOf(And(HaveField("Stage", "production"), HaveField("Bundle.ID", bundleIDOf("1.5.0")))))
}

// Restart safety: Decide is deterministic, a write whose status patch was
// lost is decided again (the Git writer finds it there), and a write whose
// commit is recorded or found is never repeated.
func TestDecide_RestartSafe(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.push("1.1.0")
	before := w.p.DeepCopy()
	o := w.observation()
	d1 := Decide(before, o, w.now)
	d2 := Decide(before, o, w.now)
	g.Expect(d2).To(Equal(d1))
	g.Expect(before).To(Equal(w.p), "Decide does not change its input")

	// The manager wrote, then died before the status patch: same write again.
	d3 := Decide(before, o, w.now.Add(time.Minute))
	g.Expect(d3.Writes).To(HaveLen(1))
	g.Expect(d3.Writes[0].Bundle.ID).To(Equal(d1.Writes[0].Bundle.ID))
	g.Expect(d3.Writes[0].Message).To(Equal(d1.Writes[0].Message))

	// The Git log shows the commit: recorded without a write.
	w.p.Status = d1.Status
	w.found["staging"] = commitFor("staging", bundleIDOf("1.1.0"))
	d := w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(w.status("staging").Commit).To(Equal(commitFor("staging", bundleIDOf("1.1.0"))))
	delete(w.found, "staging")

	// Recorded commits are not written again, at any point.
	w.release("staging", sluicev1beta1.DeliveryRunning)
	g.Expect(w.decide().Writes).To(BeEmpty())
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	g.Expect(w.decide().Writes).To(HaveLen(1))
	p := w.p.DeepCopy()
	g.Expect(Decide(p, w.observation(), w.now).Writes).To(BeEmpty())
	g.Expect(Decide(p, w.observation(), w.now.Add(time.Hour)).Writes).To(BeEmpty())
}

// Pull requests: the stage waits for the merge; a closed pull request
// fails the bundle there.
func TestDecide_PullRequests(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", pullRequests())))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d := w.decide()
	g.Expect(d.Writes).To(HaveLen(1))
	st := w.status("production")
	g.Expect(st.State).To(Equal(sluicev1beta1.StagePending))
	g.Expect(st.PullRequest).To(HavePrefix("https://git.test/org/deploy/pulls/"))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestOpen))

	w.prs["production"] = &PullRequest{}
	g.Expect(w.decide().Writes).To(BeEmpty(), "an open pull request is not opened again")
	w.prs["production"] = &PullRequest{Merged: true, MergeCommit: "abcdef0123456789abcdef0123456789abcdef01"}
	w.decide()
	g.Expect(w.status("production").State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(w.status("production").Commit).To(Equal("abcdef0123456789abcdef0123456789abcdef01"))
	w.release("production", sluicev1beta1.DeliveryPromoted)
	w.decide()
	g.Expect(w.status("production").State).To(Equal(sluicev1beta1.StageVerified))

	w.prs["production"] = nil
	w.push("1.2.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	w.prs["production"] = &PullRequest{Closed: true}
	d = w.decide()
	st = w.status("production")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestClosed))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestClosed))
	g.Expect(w.decide().Writes).To(BeEmpty(), "a closed pull request is not reopened")
}

// Failures users must act on are conditions with a reason; the ones a
// retry will not fix are Stalled.
func TestDecide_Conditions(t *testing.T) {
	tests := []struct {
		name        string
		beforeFunc  func(w *world)
		wantReason  string
		wantStalled bool
		wantWrites  int
	}{
		{name: "registry unreachable", beforeFunc: func(w *world) {
			w.images["web"] = ScanResult{Err: &Reason{Reason: sluicev1beta1.PipelineReasonRegistryUnreachable, Message: "GET https://registry.test/v2/: connection refused"}}
		}, wantReason: sluicev1beta1.PipelineReasonRegistryUnreachable},
		{name: "invalid policy", beforeFunc: func(w *world) {
			w.images["web"] = ScanResult{Err: &Reason{Reason: sluicev1beta1.PipelineReasonInvalidPolicy, Message: "pattern: missing closing )"}}
		}, wantReason: sluicev1beta1.PipelineReasonInvalidPolicy, wantStalled: true},
		{name: "setter not found", beforeFunc: func(w *world) {
			w.push("1.1.0")
			w.failWrite["staging"] = Reason{Reason: sluicev1beta1.PipelineReasonSetterNotFound, Message: `no {"$promotion": "web:web"} marker under deploy/staging`}
		}, wantReason: sluicev1beta1.PipelineReasonSetterNotFound, wantStalled: true, wantWrites: 1},
		{name: "push rejected", beforeFunc: func(w *world) {
			w.push("1.1.0")
			w.failWrite["staging"] = Reason{Reason: sluicev1beta1.PipelineReasonPushRejected, Message: "protected branch main"}
		}, wantReason: sluicev1beta1.PipelineReasonPushRejected, wantStalled: true, wantWrites: 1},
		{name: "invalid time zone", beforeFunc: func(w *world) {
			w.push("1.1.0")
			w.stageSpec("staging").Windows = []sluicev1beta1.PromotionWindow{{Start: "09:00", End: "10:00", TimeZone: "Mars/Olympus_Mons"}}
		}, wantReason: sluicev1beta1.PipelineReasonInvalidTimeZone, wantStalled: true},
		{name: "suspended", beforeFunc: func(w *world) {
			w.push("1.1.0")
			w.p.Spec.Suspend = true
		}, wantReason: sluicev1beta1.PipelineReasonSuspended},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := newWorld(t, newPipeline(stage("staging")))
			tt.beforeFunc(w)
			d := w.decide()
			g.Expect(d.Writes).To(HaveLen(tt.wantWrites))
			ready := condition(d.Status, ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(tt.wantReason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(1)))
			stalled := condition(d.Status, ConditionStalled)
			if tt.wantStalled {
				g.Expect(stalled).NotTo(BeNil())
				g.Expect(stalled.Reason).To(Equal(tt.wantReason))
			} else {
				g.Expect(stalled).To(BeNil())
			}
			if tt.wantWrites > 0 {
				// The next decision retries the same write; a success clears the failure.
				d = w.decide()
				g.Expect(d.Writes).To(HaveLen(1))
				g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageCommitted))
				g.Expect(condition(d.Status, ConditionStalled)).To(BeNil())
				g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonProgressing))
			}
		})
	}
}

// A Canary that does not exist is said, not waited on silently.
func TestDecide_CanaryNotFound(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging")))
	delete(w.canaries, "staging")
	w.push("1.1.0")
	w.decide()
	d := w.decide()
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonCanaryNotFound))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonCanaryNotFound))
	g.Expect(condition(d.Status, ConditionReady).Message).To(ContainSubstring("Canary staging/web not found"))
}

// Status stays bounded however many bundles come and go.
func TestDecide_Bounded(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", manual())))
	w.p.Annotations = map[string]string{}
	for i := range 60 {
		tag := "1." + string(rune('0'+i/10)) + string(rune('0'+i%10)) + ".0"
		w.push(tag)
		w.decide()
		w.release("staging", sluicev1beta1.DeliveryPromoted)
		w.decide()
		w.p.Annotations[sluicev1beta1.PipelineApproveAnnotation] = "production/" + bundleIDOf(tag)
		w.decide()
		w.now = w.now.Add(time.Minute)
	}
	g.Expect(len(w.p.Status.Bundles)).To(BeNumerically("<=", sluicev1beta1.PipelineBundleLimit))
	for _, st := range w.p.Status.Stages {
		g.Expect(len(st.History)).To(BeNumerically("<=", sluicev1beta1.PipelineStageHistoryLimit))
		g.Expect(len(st.Approvals)).To(BeNumerically("<=", sluicev1beta1.PipelineApprovalLimit))
		g.Expect(w.p.Status.Bundles).To(ContainElement(HaveField("ID", st.Bundle)), "a stage's current bundle is never dropped")
	}
}

// Stages added, removed or reordered in the spec are followed by the status.
func TestDecide_StatusFollowsSpecStages(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.push("1.1.0")
	w.decide()
	w.p.Spec.Stages = []sluicev1beta1.PipelineStage{stage("dev"), w.p.Spec.Stages[0]}
	w.canaries["dev"] = &sluicev1beta1.Canary{}
	d := w.decide()
	g.Expect(d.Status.Stages).To(HaveLen(2))
	g.Expect(d.Status.Stages[0].Name).To(Equal("dev"))
	g.Expect(d.Status.Stages[1].Name).To(Equal("staging"))
	g.Expect(d.Status.Stages[1].Bundle).To(Equal(bundleIDOf("1.1.0")), "staging keeps its state")
}
