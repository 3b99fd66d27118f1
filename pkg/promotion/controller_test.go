package promotion_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	eventsv1 "k8s.io/api/events/v1"
)

// A tag pushed to the registry is committed to staging's overlay, pinned by
// digest, with its provenance; once staging's Canary promoted the release
// that commit started, production's overlay gets the same digest, naming
// the release that verified it. A reconciler started afresh on the same
// status, or on a status whose last patch was lost, commits nothing twice.
func TestReconciler_PromotesThroughStagingToProduction(t *testing.T) {
	f := newFixture(t)
	g := f.g
	f.pipeline()
	t0 := time.Now().UTC().Truncate(time.Second)
	start := f.commits()
	f.push("latest") // the repository exists; no tag is a version

	// No version yet: the scan finds nothing, nothing is written.
	res := f.reconcile(f.r, t0)
	p := f.get()
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonNoMatchingTag))
	// The next scan, jittered by up to 10 %.
	g.Expect(res.RequeueAfter).To(And(BeNumerically(">=", 10*time.Second), BeNumerically("<=", 11*time.Second)))
	g.Expect(f.commits()).To(Equal(start))

	digest := f.push("1.1.0")
	// Staging's GitSync applied a revision: the bundle records it.
	gs := &sluicev1beta1.GitSync{}
	g.Expect(f.env.Client.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "staging"}, gs)).To(Succeed())
	gs.Status.LastAppliedRevision = "main@sha1:" + f.head()
	g.Expect(f.env.Client.Status().Update(f.ctx, gs)).To(Succeed())
	// The scan is not due before its interval: nothing new yet.
	f.reconcile(f.r, t0.Add(5*time.Second))
	g.Expect(f.get().Status.Bundles).To(BeEmpty())

	// Due: a bundle, and a commit in staging's overlay.
	f.reconcile(f.r, t0.Add(11*time.Second))
	p = f.get()
	g.Expect(p.Status.Bundles).To(HaveLen(1))
	bundle := p.Status.Bundles[0]
	g.Expect(bundle.ConfigRevision).To(Equal(gs.Status.LastAppliedRevision))
	g.Expect(bundle.Images).To(ConsistOf(sluicev1beta1.BundleImage{Source: "web", Repository: f.image, Tag: "1.1.0", Digest: digest}))
	staging := stageOf(p, "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(staging.Bundle).To(Equal(bundle.ID))
	stagingCommit := f.head()
	g.Expect(staging.Commit).To(Equal(stagingCommit))
	g.Expect(f.git("show", "main:deploy/staging/kustomization.yaml")).To(And(ContainSubstring("newTag: 1.1.0"), ContainSubstring("digest: "+digest)))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("newTag: 1.0.0"))
	g.Expect(f.git("log", "-1", "--format=%an <%ae>", "main")).To(Equal("Sluice <sluice@example.com>"))
	g.Expect(f.git("log", "-1", "--format=%B", "main")).To(And(
		HavePrefix("promote web 1.1.0 to staging"),
		ContainSubstring("Sluice-Pipeline: "+f.ns+"/web"),
		ContainSubstring("Sluice-Stage: staging"),
		ContainSubstring("Sluice-Bundle: "+bundle.ID),
		ContainSubstring("Sluice-Image: web="+f.image+":1.1.0@"+digest),
	))
	g.Expect(stageOf(p, "production").State).To(BeEmpty())
	afterStaging := f.commits()
	g.Expect(afterStaging).NotTo(Equal(start))

	// Decided again, and by a restarted manager: no second commit.
	f.reconcile(f.r, t0.Add(12*time.Second))
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(13*time.Second))
	g.Expect(f.commits()).To(Equal(afterStaging))

	// A restart after the write but before the status patch: the status
	// says Pending without a commit; the write is decided again and finds
	// the change on the branch, so the same commit is recorded.
	lost := f.get()
	st := &lost.Status.Stages[0]
	st.State, st.Commit, st.Reason = sluicev1beta1.StagePending, "", sluicev1beta1.PipelineReasonProgressing
	g.Expect(f.env.Client.Status().Update(f.ctx, lost)).To(Succeed())
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(14*time.Second))
	g.Expect(f.commits()).To(Equal(afterStaging))
	g.Expect(stageOf(f.get(), "staging").Commit).To(Equal(stagingCommit))
	g.Expect(stageOf(f.get(), "staging").State).To(Equal(sluicev1beta1.StageCommitted))

	// Staging's Canary promotes the release that commit started.
	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(20*time.Second))
	f.reconcile(f.r, t0.Add(21*time.Second))
	p = f.get()
	g.Expect(stageOf(p, "staging").State).To(Equal(sluicev1beta1.StageVerified))
	production := stageOf(p, "production")
	g.Expect(production.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(production.Bundle).To(Equal(bundle.ID))
	prodCommit := f.head()
	g.Expect(production.Commit).To(Equal(prodCommit))
	g.Expect(prodCommit).NotTo(Equal(stagingCommit))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(And(ContainSubstring("newTag: 1.1.0"), ContainSubstring("digest: "+digest)))
	g.Expect(f.git("log", "-1", "--format=%B", "main")).To(And(
		HavePrefix("promote web 1.1.0 to production"),
		ContainSubstring("Sluice-Stage: production"),
		ContainSubstring("Sluice-Bundle: "+bundle.ID),
		ContainSubstring("Sluice-Source-Stage: staging"),
		ContainSubstring("Sluice-Verified-By: "+f.ns+"/web-staging release web-staging-1 (commit "+stagingCommit[:12]+")"),
	))
	afterProduction := f.commits()
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(22*time.Second))
	g.Expect(f.commits()).To(Equal(afterProduction))

	// Production's Canary promotes it: every stage holds the bundle.
	f.release("web-production", prodCommit, "web-production-1", sluicev1beta1.DeliveryPromoted, t0.Add(30*time.Second))
	f.reconcile(f.r, t0.Add(31*time.Second))
	p = f.get()
	g.Expect(stageOf(p, "production").State).To(Equal(sluicev1beta1.StageVerified))
	ready = apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonSucceeded))

	// The transitions were announced, after the status that records them,
	// and no secret is in an event, the status or the logs.
	g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(ContainElements("NewBundle", "Committed"))
	f.expectNoSecret(true)
}

// A release rolled back in staging fails the bundle there: production never
// gets a commit for it, and the stage says why.
func TestReconciler_RolledBackBundleGoesNoFurther(t *testing.T) {
	f := newFixture(t)
	g := f.g
	f.pipeline()
	t0 := time.Now().UTC().Truncate(time.Second)
	f.push("1.2.0")
	f.reconcile(f.r, t0)
	stagingCommit := f.head()
	g.Expect(stageOf(f.get(), "staging").Commit).To(Equal(stagingCommit))
	afterStaging := f.commits()

	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryRolledBack, t0.Add(5*time.Second))
	f.reconcile(f.r, t0.Add(6*time.Second))
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(7*time.Second))
	p := f.get()
	staging := stageOf(p, "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Expect(staging.Message).To(ContainSubstring("rolled back"))
	g.Expect(stageOf(p, "production").State).To(BeEmpty())
	g.Expect(stageOf(p, "production").Bundle).To(BeEmpty())
	g.Expect(f.commits()).To(Equal(afterStaging))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("newTag: 1.0.0"))
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(ContainElement(sluicev1beta1.PipelineReasonVerificationFailed))
	f.expectNoSecret(true)
}

func (f *fixture) eventReasons() []string {
	var list eventsv1.EventList
	if err := f.env.Client.List(f.ctx, &list, client.InNamespace(f.ns)); err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Pipeline" {
			out = append(out, e.Reason)
		}
	}
	return out
}

func (f *fixture) expectNoSecret(wrote bool) {
	f.t.Helper()
	var list eventsv1.EventList
	f.g.Expect(f.env.Client.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	for _, e := range list.Items {
		f.g.Expect(e.Note).NotTo(ContainSubstring(gitPassword))
	}
	p := f.get()
	for _, c := range p.Status.Conditions {
		f.g.Expect(c.Message).NotTo(ContainSubstring(gitPassword))
	}
	f.g.Expect(f.logs.String()).NotTo(ContainSubstring(gitPassword))
	f.g.Expect(strings.Contains(f.logs.String(), "Written")).To(Equal(wrote), "the reconciler logs its writes")
}
