package promotion_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// setPhase writes a Canary's phase, as the engine does.
func (f *fixture) setPhase(canary string, phase sluicev1beta1.CanaryPhase) {
	f.t.Helper()
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: canary}, c)).To(Succeed())
	c.Status.Phase = phase
	f.g.Expect(f.env.Client.Status().Update(f.ctx, c)).To(Succeed())
}

// Staging's overlay already pins the first bundle (tag and digest) when the
// Pipeline first writes it, as a team's overlay does before it adopts
// Sluice: the write commits nothing and no release starts. Staging waits
// while its Canary is releasing something else, says so, then adopts the
// bundle once the Canary is idle, and production gets a commit naming the
// adoption. A restarted reconciler commits nothing twice.
func TestReconciler_AdoptsBundleAlreadyInBranch(t *testing.T) {
	f := newFixture(t)
	g := f.g
	t0 := time.Now().UTC().Truncate(time.Second)
	digest := f.push("1.1.0")
	_, err := f.repo.Write("pin web 1.1.0 by hand", map[string]string{
		"deploy/staging/kustomization.yaml": fmt.Sprintf("resources:\n  - ../base\nimages:\n  - name: %s\n    newTag: 1.1.0\n    digest: %s\n", f.image, digest),
	})
	g.Expect(err).NotTo(HaveOccurred())
	pinned := f.head()
	before := f.commits()
	// The Canary is releasing another revision.
	other := "0123456789abcdef0123456789abcdef01234567"
	f.release("web-staging", other, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(-time.Hour))
	c := &sluicev1beta1.Canary{}
	g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "web-staging"}, c)).To(Succeed())
	last := &c.Status.Delivery.Releases[len(c.Status.Delivery.Releases)-1]
	last.Outcome, last.EndTime = sluicev1beta1.DeliveryRunning, nil
	c.Status.Phase = sluicev1beta1.CanaryPhaseProgressing
	g.Expect(f.env.Client.Status().Update(f.ctx, c)).To(Succeed())
	f.pipeline()

	f.reconcile(f.r, t0)
	p := f.get()
	g.Expect(p.Status.Bundles).To(HaveLen(1))
	id := p.Status.Bundles[0].ID
	staging := stageOf(p, "staging")
	g.Expect(f.commits()).To(Equal(before), "the branch already held the bundle: nothing committed")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(staging.Commit).To(Equal(pinned))
	g.Expect(stageOf(p, "production").State).To(BeEmpty())

	// Decided again while the Canary releases: it waits and says why.
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(time.Second))
	p = f.get()
	staging = stageOf(p, "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(staging.Message).To(And(ContainSubstring("commit "+pinned[:12]), ContainSubstring("is releasing web-staging-1")))
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Message).To(ContainSubstring("waiting for that release to end"))
	g.Expect(f.commits()).To(Equal(before))

	// The release ends promoted: the Canary is idle, staging adopts the
	// bundle and production gets the same digest through a commit.
	g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "web-staging"}, c)).To(Succeed())
	last = &c.Status.Delivery.Releases[len(c.Status.Delivery.Releases)-1]
	last.Outcome, last.EndTime = sluicev1beta1.DeliveryPromoted, &metav1.Time{Time: t0}
	c.Status.Phase = sluicev1beta1.CanaryPhaseSucceeded
	g.Expect(f.env.Client.Status().Update(f.ctx, c)).To(Succeed())
	f.reconcile(f.r, t0.Add(2*time.Second))
	p = f.get()
	staging = stageOf(p, "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonAdopted))
	g.Expect(staging.Message).To(ContainSubstring("no release verified it here"))
	production := stageOf(p, "production")
	g.Expect(production.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(production.Bundle).To(Equal(id))
	prodCommit := f.head()
	g.Expect(prodCommit).NotTo(Equal(pinned))
	g.Expect(production.Commit).To(Equal(prodCommit))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(And(ContainSubstring("newTag: 1.1.0"), ContainSubstring("digest: "+digest)))
	g.Expect(f.git("log", "-1", "--format=%B", "main")).To(And(
		HavePrefix("promote web 1.1.0 to production"),
		ContainSubstring("Sluice-Source-Stage: staging"),
		ContainSubstring("Sluice-Verified-By: "+f.ns+"/web-staging, adopted (the branch already held it at commit "+pinned[:12]+"; no release ran)"),
	))
	afterProduction := f.commits()
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(3*time.Second))
	g.Expect(f.commits()).To(Equal(afterProduction))

	f.release("web-production", prodCommit, "web-production-1", sluicev1beta1.DeliveryPromoted, t0.Add(10*time.Second))
	f.reconcile(f.r, t0.Add(11*time.Second))
	p = f.get()
	g.Expect(stageOf(p, "production").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(stageOf(p, "production").Reason).To(Equal(sluicev1beta1.PipelineReasonSucceeded))
	ready = apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(
		ContainElements(sluicev1beta1.PipelineReasonAlreadyInBranch, sluicev1beta1.PipelineReasonAdopted, "Committed"))
	g.Expect(f.logs.String()).To(ContainSubstring("Branch already holds the bundle"))
	f.expectNoSecret(true)
}

// A Canary whose last release was rolled back does not run what the
// branch holds: the stage does not adopt and the Ready condition says why,
// naming the commit; production gets nothing.
func TestReconciler_AlreadyInBranchWaitsAfterFailedRelease(t *testing.T) {
	f := newFixture(t)
	g := f.g
	t0 := time.Now().UTC().Truncate(time.Second)
	digest := f.push("1.1.0")
	_, err := f.repo.Write("pin web 1.1.0 by hand", map[string]string{
		"deploy/staging/kustomization.yaml": fmt.Sprintf("resources:\n  - ../base\nimages:\n  - name: %s\n    newTag: 1.1.0\n    digest: %s\n", f.image, digest),
	})
	g.Expect(err).NotTo(HaveOccurred())
	pinned := f.head()
	before := f.commits()
	f.release("web-staging", "0123456789abcdef0123456789abcdef01234567", "web-staging-1", sluicev1beta1.DeliveryRolledBack, t0.Add(-time.Hour))
	f.setPhase("web-staging", sluicev1beta1.CanaryPhaseFailed)
	f.pipeline()

	f.reconcile(f.r, t0)
	f.reconcile(f.r, t0.Add(time.Second))
	p := f.get()
	staging := stageOf(p, "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonAlreadyInBranch))
	g.Expect(ready.Message).To(And(ContainSubstring("commit "+pinned[:12]), ContainSubstring("rolled back its last release web-staging-1")))
	g.Expect(stageOf(p, "production").State).To(BeEmpty())
	g.Expect(f.commits()).To(Equal(before))
	f.expectNoSecret(false)
}
