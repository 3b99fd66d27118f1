package promotion_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A write whose status patch was lost, on a stage held since: the decision
// asks for no write (the hold), so only the commit's trailers on the
// branch can tell that the bundle landed. A restarted reconciler finds the
// commit under newer commits of others, records it, and writes nothing.
func TestReconciler_FindsALostCommitByItsTrailers(t *testing.T) {
	f := newFixture(t)
	g := f.g
	f.pipeline()
	t0 := time.Now().UTC().Truncate(time.Second)
	f.push("1.1.0")
	f.reconcile(f.r, t0)
	written := f.head()
	st := stageOf(f.get(), "staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(st.Commit).To(Equal(written))

	// Others push after it.
	_, err := f.repo.Write("docs: a note", map[string]string{"README.md": "deploy\n"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = f.repo.Write("base: a label", map[string]string{"deploy/base/kustomization.yaml": "resources: []\ncommonLabels: {team: web}\n"})
	g.Expect(err).NotTo(HaveOccurred())
	before := f.commits()

	// The status patch of the write is lost, and a person holds the stage.
	lost := f.get()
	lost.Spec.Stages[0].Hold = &sluicev1beta1.PipelineHold{Reason: "incident 42"}
	g.Expect(f.env.Client.Update(f.ctx, lost)).To(Succeed())
	lost = f.get()
	s := &lost.Status.Stages[0]
	s.State, s.Commit, s.Reason = sluicev1beta1.StagePending, "", sluicev1beta1.PipelineReasonProgressing
	g.Expect(f.env.Client.Status().Update(f.ctx, lost)).To(Succeed())

	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(time.Minute))
	st = stageOf(f.get(), "staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted), st.Message)
	g.Expect(st.Commit).To(Equal(written))
	g.Expect(f.commits()).To(Equal(before), "nothing written")
	g.Expect(f.logs.String()).To(ContainSubstring("Found the commit of a write whose status was lost"))
	f.expectNoSecret(true)

	// The release of that commit verifies the bundle as usual.
	f.release("web-staging", written, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(2*time.Minute))
	f.reconcile(f.r, t0.Add(3*time.Minute))
	g.Expect(stageOf(f.get(), "staging").State).To(Equal(sluicev1beta1.StageVerified))
}

// A bundle rolled back to is not taken for its earlier commit: only the
// commits after the stage's previous commit are candidates.
func TestReconciler_LostCommitLookupSkipsEarlierWrites(t *testing.T) {
	f := newFixture(t)
	g := f.g
	f.pipeline()
	t0 := time.Now().UTC().Truncate(time.Second)
	f.push("1.1.0")
	f.reconcile(f.r, t0)
	first := stageOf(f.get(), "staging")
	f.release("web-staging", first.Commit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(time.Minute))
	f.reconcile(f.r, t0.Add(61*time.Second))
	g.Expect(stageOf(f.get(), "staging").State).To(Equal(sluicev1beta1.StageVerified))

	// 1.2.0 replaces it in staging (and production gets nothing of it yet).
	f.push("1.2.0")
	f.reconcile(f.r, t0.Add(2*time.Minute))
	second := stageOf(f.get(), "staging")
	g.Expect(second.Bundle).NotTo(Equal(first.Bundle))
	g.Expect(second.Commit).NotTo(BeEmpty())

	// The status says staging is to be written 1.1.0 again, decided but
	// never written, and the stage is held: the earlier commit of 1.1.0,
	// before staging's previous commit, is not this write's.
	p := f.get()
	p.Spec.Stages[0].Hold = &sluicev1beta1.PipelineHold{Reason: "freeze"}
	p.Spec.Sources[0].Interval.Duration = time.Hour
	g.Expect(f.env.Client.Update(f.ctx, p)).To(Succeed())
	p = f.get()
	s := &p.Status.Stages[0]
	s.History = append(s.History, sluicev1beta1.StageRecord{Bundle: s.Bundle, Commit: s.Commit, State: sluicev1beta1.StageFailed,
		Reason: sluicev1beta1.PipelineReasonSuperseded, Time: s.History[0].Time})
	s.Bundle, s.Commit, s.State, s.Reason, s.Release, s.PromotedAt = first.Bundle, "", sluicev1beta1.StagePending, sluicev1beta1.PipelineReasonProgressing, "", nil
	g.Expect(f.env.Client.Status().Update(f.ctx, p)).To(Succeed())

	before := f.commits()
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(3*time.Minute))
	st := stageOf(f.get(), "staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StagePending))
	g.Expect(st.Commit).To(BeEmpty())
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonHeld))
	g.Expect(f.commits()).To(Equal(before))
}
