package promotion

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// headOf is the head of a stage's branch that already holds what a write
// would set: a commit the Canary never released.
func headOf(stage string) string { return commitFor(stage, "head-before-sluice") }

// decideInBranch decides and acts as decide does, except that the writes to
// the stages in inBranch find the bundle already there: nothing committed,
// the branch's head recorded.
func (w *world) decideInBranch(inBranch ...string) Decision {
	w.t.Helper()
	d := Decide(w.p, w.observation(), w.now)
	for _, wr := range d.Writes {
		w.writes = append(w.writes, wr)
		sha := commitFor(wr.Stage, wr.Bundle.ID)
		switch {
		case contains(inBranch, wr.Stage):
			d.RecordAlreadyInBranch(wr.Stage, headOf(wr.Stage))
		case w.stageSpec(wr.Stage).Git.Push != nil:
			d.RecordPullRequest(wr.Stage, "https://git.test/org/deploy/pulls/"+sha[:4])
		default:
			d.RecordCommit(wr.Stage, sha)
		}
	}
	w.p.Status = d.Status
	w.last = d
	return d
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// phase sets the stage's Canary's phase.
func (w *world) phase(stage string, p sluicev1beta1.CanaryPhase) { w.canaries[stage].Status.Phase = p }

// An overlay that already pins the first bundle: the write commits
// nothing, no release will come, and staging adopts the bundle at once
// because its Canary is idle; production gets a commit naming the adoption.
func TestDecide_AdoptsBundleAlreadyInBranchWhenIdle(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.phase("staging", sluicev1beta1.CanaryPhaseInitialized)
	id := bundleIDOf("1.1.0")
	w.push("1.1.0")

	d := w.decideInBranch("staging")
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(st.Commit).To(Equal(headOf("staging")))
	g.Expect(st.Message).To(ContainSubstring("already held bundle " + id + " at commit " + headOf("staging")[:12]))
	g.Expect(d.Events).To(ContainElement(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonAlreadyInBranch)))

	d = w.decide()
	st = w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(st.Release).To(BeEmpty(), "no release verified it")
	g.Expect(st.Message).To(ContainSubstring("no release verified it here"))
	g.Expect(st.Message).To(ContainSubstring("already held it at commit " + headOf("staging")[:12]))
	g.Expect(d.Writes).To(HaveLen(1), "an adopted bundle goes on to the next stage")
	g.Expect(d.Writes[0].Stage).To(Equal("production"))
	g.Expect(d.Writes[0].Bundle.ID).To(Equal(id))
	g.Expect(d.Writes[0].VerifiedBy).To(Equal("staging/web, adopted (the branch already held it at commit " + headOf("staging")[:12] + "; no release ran)"))
	g.Expect(d.Writes[0].Message).To(ContainSubstring("Verified in staging by staging/web, adopted"))
	g.Expect(d.Events).To(ContainElement(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonAdopted)))

	w.release("production", sluicev1beta1.DeliveryPromoted)
	d = w.decide()
	g.Expect(w.status("production").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(w.status("production").Reason).To(Equal(sluicev1beta1.PipelineReasonSucceeded))
	g.Expect(condition(d.Status, ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(w.writes).To(HaveLen(2), "nothing written twice")
}

// Adoption honours soakTime, counted from the adoption; a release started
// during that soak is another revision and fails the bundle.
func TestDecide_AdoptedBundleSoaks(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging", soak(10*time.Minute)), stage("production")))
	w.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	w.push("1.1.0")
	w.decideInBranch("staging")

	w.now = w.now.Add(time.Minute)
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageSoaking))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(st.PromotedAt.Time).To(Equal(w.now))
	g.Expect(st.Message).To(ContainSubstring("adopted; soaking until " + w.now.Add(10*time.Minute).Format(time.RFC3339)))
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.RequeueAfter).To(Equal(10 * time.Minute))

	w.now = w.now.Add(10 * time.Minute)
	d = w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(d.Writes).To(ConsistOf(HaveField("Stage", "production")))

	// Another adoption soaks; a release starting meanwhile ends it.
	w2 := newWorld(t, newPipeline(stage("staging", soak(10*time.Minute)), stage("production")))
	w2.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	w2.push("1.1.0")
	w2.decideInBranch("staging")
	w2.decide()
	w2.now = w2.now.Add(time.Minute)
	w2.releaseCommit("staging", commitFor("staging", "someone-else"), sluicev1beta1.DeliveryRunning)
	d = w2.decide()
	g.Expect(w2.status("staging").State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(w2.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonSuperseded))
	g.Expect(d.Writes).To(BeEmpty())
}

// A Canary in the middle of a release: the stage waits, and says for what;
// once the release is promoted the Canary is idle and the stage adopts.
func TestDecide_AlreadyInBranchWaitsWhileReleasing(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	other := commitFor("staging", "someone-else")
	w.releaseCommit("staging", other, sluicev1beta1.DeliveryRunning)
	w.phase("staging", sluicev1beta1.CanaryPhaseProgressing)
	w.push("1.1.0")
	w.decideInBranch("staging")

	for range 3 {
		w.now = w.now.Add(time.Hour)
		d := w.decide()
		g.Expect(d.Writes).To(BeEmpty())
		st := w.status("staging")
		g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
		g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
		g.Expect(st.Message).To(ContainSubstring("commit " + headOf("staging")[:12]))
		g.Expect(st.Message).To(ContainSubstring("Canary staging/web is releasing r" + other[:8] + ": waiting for that release to end"))
		ready := condition(d.Status, ConditionReady)
		g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonProgressing))
		g.Expect(ready.Message).To(ContainSubstring("waiting for that release to end"))
	}

	// The Canary says Progressing but records no release yet: still waits.
	w.canaries["staging"].Status.Delivery = nil
	w.canaries["staging"].Status.Source = nil
	w.decide()
	g.Expect(w.status("staging").Message).To(ContainSubstring("Canary staging/web is Progressing: waiting for it to be Initialized or Succeeded"))

	w.releaseCommit("staging", other, sluicev1beta1.DeliveryPromoted)
	w.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	d := w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(d.Writes).To(ConsistOf(HaveField("Stage", "production")))
}

// A Canary whose last release was rolled back runs the revision before on
// its primary, not what the branch holds: the stage does not adopt, says
// so as a problem, and adopts once a release succeeds.
func TestDecide_AlreadyInBranchWaitsWhenLastReleaseFailed(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	bad := commitFor("staging", "bad")
	w.releaseCommit("staging", bad, sluicev1beta1.DeliveryRolledBack)
	w.phase("staging", sluicev1beta1.CanaryPhaseFailed)
	w.push("1.1.0")
	w.decideInBranch("staging")

	d := w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(st.Message).To(ContainSubstring("rolled back its last release r" + bad[:8] + " (Analysis)"))
	g.Expect(st.Message).To(ContainSubstring("waiting for a release of Canary staging/web to succeed"))
	ready := condition(d.Status, ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(ready.Message).To(ContainSubstring("commit " + headOf("staging")[:12]))

	// Failed phase without a delivery record says the same.
	w.canaries["staging"].Status.Delivery = nil
	w.canaries["staging"].Status.Source = nil
	w.decide()
	g.Expect(w.status("staging").Message).To(ContainSubstring("Canary staging/web is Failed"))

	good := commitFor("staging", "good")
	w.releaseCommit("staging", good, sluicev1beta1.DeliveryPromoted)
	w.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	d = w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(d.Writes).To(ConsistOf(HaveField("Stage", "production")))
}

// A branch head the Canary did release is verified by that release's
// verdict, as any commit: adoption is only for a commit no release knows.
func TestDecide_AlreadyInBranchFollowsAReleaseOfThatCommit(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	w.push("1.1.0")
	w.decideInBranch("staging")
	w.releaseCommit("staging", headOf("staging"), sluicev1beta1.DeliveryRolledBack)
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Expect(d.Writes).To(BeEmpty())
}

// No Canary: the stage waits and says the Canary is missing.
func TestDecide_AlreadyInBranchWithoutCanary(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.push("1.1.0")
	w.decideInBranch("staging")
	delete(w.canaries, "staging")
	d := w.decide()
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonCanaryNotFound))
	g.Expect(d.Writes).To(BeEmpty())
}

// A rollback to a bundle the branch already holds (the last release of
// the newer bundle was rolled back, so the primary runs the older one and
// the branch was reset by hand): the stage adopts it once the Canary is
// idle again, and the rollback stays.
func TestDecide_RollbackToBundleAlreadyInBranch(t *testing.T) {
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
	old := bundleIDOf("1.1.0")
	w.phase("production", sluicev1beta1.CanaryPhaseSucceeded)
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineRollbackAnnotation: "production/" + old}
	d := w.decideInBranch("production")
	g.Expect(d.Writes).To(ConsistOf(And(HaveField("Rollback", true), HaveField("Bundle.ID", old))))
	st := w.status("production")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))

	d = w.decide()
	st = w.status("production")
	g.Expect(st.Bundle).To(Equal(old))
	g.Expect(st.Rollback).To(BeTrue())
	g.Expect(st.State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(d.Writes).To(BeEmpty())
	for range 3 {
		w.now = w.now.Add(time.Hour)
		g.Expect(w.decide().Writes).To(BeEmpty(), "automation does not undo the adopted rollback")
	}
}

// Deciding again on the same input gives the same adoption: no state kept
// outside the status.
func TestDecide_AdoptionIsDeterministic(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	w.phase("staging", sluicev1beta1.CanaryPhaseInitialized)
	w.push("1.1.0")
	w.decideInBranch("staging")
	p := w.p.DeepCopy()
	o := w.observation()
	g.Expect(Decide(p, o, w.now)).To(Equal(Decide(p, o, w.now)))
	g.Expect(p).To(Equal(w.p))
}

// The alert of a bundle found already in the branch says nothing was
// committed, and is sent once, not again when the bundle is adopted.
func TestAlerts_AlreadyInBranchSaysNothingCommitted(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production")))
	alerting(w)
	w.phase("staging", sluicev1beta1.CanaryPhaseSucceeded)
	w.push("1.1.0")
	prev := w.p.Status.Alerts
	w.decideInBranch("staging")
	ds := decideAlerts(w.p, prev, &w.p.Status, w.now)
	g.Expect(ds).To(HaveLen(1))
	g.Expect(ds[0].Event.Stage).To(Equal("staging"))
	g.Expect(ds[0].Event.Commit).To(Equal(headOf("staging")))
	g.Expect(ds[0].Event.Message).To(Equal("staging: bundle " + bundleIDOf("1.1.0") + " (web:1.1.0) was already in the branch at commit " +
		headOf("staging")[:12] + ": nothing committed"))
	// Adopted: production's commit is the only new alert.
	g.Expect(w.decideAlerting()).To(Equal([]string{"team Committed production 1.1.0"}))
}

// FuzzDecideAdopt drives two stages with random writes that find their
// bundle already in the branch, Canary phases and releases, and checks
// that a stage never waits on an idle Canary (the bug this fixes), that an
// adopted bundle records no release, and that a bundle reaches production
// only once verified (or adopted) in staging.
func FuzzDecideAdopt(f *testing.F) {
	// Bytes go in pairs (op, arg); arg%2 picks the stage, arg%5 the phase.
	f.Add([]byte{0, 0, 6, 0, 2, 6, 7, 0, 1, 1, 2, 3})
	f.Add([]byte{2, 2, 3, 4, 0, 0, 6, 0, 7, 0, 2, 6, 7, 0, 6, 1, 2, 1, 7, 0, 4, 9, 7, 0})
	f.Add([]byte{0, 0, 2, 0, 7, 0, 1, 2, 7, 0, 4, 6, 7, 0, 5, 0, 6, 1, 2, 1, 7, 0})
	phases := []sluicev1beta1.CanaryPhase{sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded,
		sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseFailed, ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 300 {
			data = data[:300]
		}
		w := newWorld(t, newPipeline(stage("staging", soak(5*time.Minute)), stage("production")))
		w.p.Annotations = map[string]string{}
		names := []string{"staging", "production"}
		tags := 0
		var inBranch []string
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i]%8, int(data[i+1])
			name := names[arg%2]
			switch op {
			case 0:
				tags++
				w.push(fmt.Sprintf("1.%d.0", tags))
			case 1:
				if len(w.p.Status.Stages) > 0 && w.status(name).Commit != "" {
					w.release(name, outcomes[arg%len(outcomes)])
				}
			case 2:
				w.phase(name, phases[arg%len(phases)])
			case 3:
				w.releaseCommit(name, commitFor(name, fmt.Sprint("other", arg)), outcomes[arg%len(outcomes)])
			case 4:
				w.now = w.now.Add(time.Duration(arg) * time.Minute)
			case 5:
				if n := len(w.p.Status.Bundles); n > 0 {
					w.p.Annotations[sluicev1beta1.PipelineRollbackAnnotation] = name + "/" + w.p.Status.Bundles[arg%n].ID
				}
			case 6:
				inBranch = append(inBranch, name)
			case 7:
				checkAdopt(t, w, inBranch)
				inBranch = nil
			}
		}
		checkAdopt(t, w, inBranch)
	})
}

func checkAdopt(t *testing.T, w *world, inBranch []string) {
	t.Helper()
	in := w.p.DeepCopy()
	o := w.observation()
	if !reflect.DeepEqual(Decide(in, o, w.now), Decide(in, o, w.now)) {
		t.Fatal("Decide is not deterministic")
	}
	d := w.decideInBranch(inBranch...)
	for _, wr := range d.Writes {
		if wr.Stage == "production" && !wr.Rollback && !verifiedIn(&d.Status.Stages[0], wr.Bundle.ID) {
			t.Fatalf("bundle %s written to production unverified in staging", wr.Bundle.ID)
		}
	}
	// Decide once more on what is now true: no stage found already in its
	// branch may still wait on an idle Canary that never released its commit.
	d = w.decide()
	for i, st := range d.Status.Stages {
		c := w.canaries[st.Name]
		if st.State == sluicev1beta1.StageCommitted && st.Commit == headOf(st.Name) &&
			releaseOf(c, st.Commit) == nil && (c.Status.Source == nil || commitOf(c.Status.Source.Revision) != st.Commit) {
			if why, _ := notIdle(c, canaryName(w.p, &w.p.Spec.Stages[i])); why == "" {
				t.Fatalf("stage %s waits on an idle Canary: %s", st.Name, st.Message)
			}
		}
		if st.Reason == sluicev1beta1.PipelineReasonAdopted && st.Release != "" {
			t.Fatalf("stage %s adopted bundle %s records release %s", st.Name, st.Bundle, st.Release)
		}
	}
}
