package main

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestRun_ACommitNamesItsRelease: the whole manager (GitSync and engine on
// one API server, a real Git server): a commit pushed to Git starts a
// release whose Canary status.source names that commit, the GitSync that
// applied it and the commit's time, and keeps it after the promotion.
func TestRun_ACommitNamesItsRelease(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "source")
	g.Expect(err).NotTo(HaveOccurred())

	repo, done := runWebFromGit(ctx, t, g, ns)

	canary := func(g Gomega) *sluicev1beta1.Canary {
		c := &sluicev1beta1.Canary{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c)).To(Succeed())
		return c
	}
	g.Eventually(func(g Gomega) {
		c := canary(g)
		g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseInitialized))
		g.Expect(c.Status.Source).To(BeNil(), "the first deployment is no release")
	}, 90*time.Second, 200*time.Millisecond).Should(Succeed())

	// When a commit changes the image,
	sha, err := repo.Write("web 2.0", map[string]string{"web/deployment.yaml": webYAML("2.0")})
	g.Expect(err).NotTo(HaveOccurred())
	out, err := repo.Git("log", "-1", "--format=%cI", sha)
	g.Expect(err).NotTo(HaveOccurred())
	committed, err := time.Parse(time.RFC3339, strings.TrimSpace(out))
	g.Expect(err).NotTo(HaveOccurred())

	// then its release names it.
	g.Eventually(func(g Gomega) {
		c := canary(g)
		g.Expect(c.Status.Phase).To(BeElementOf(sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion,
			sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising, sluicev1beta1.CanaryPhaseSucceeded))
		src := c.Status.Source
		g.Expect(src).NotTo(BeNil())
		g.Expect(src.Revision).To(Equal("main@sha1:" + sha))
		g.Expect(src.GitSyncName).To(Equal(DefaultOptions().GitSyncName))
		g.Expect(src.GitSyncNamespace).To(Equal(ns))
		g.Expect(src.Release).To(Equal(c.Status.Revision))
		g.Expect(src.CommitTime).NotTo(BeNil())
		g.Expect(src.CommitTime.Time).To(BeTemporally("==", committed))
		g.Expect(src.AppliedTime).NotTo(BeNil())
		g.Expect(src.AppliedTime.Time).To(BeTemporally(">=", committed))
	}, 60*time.Second, 100*time.Millisecond).Should(Succeed())

	// The target carries the annotations the source was read from.
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
	g.Expect(d.Annotations).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, "main@sha1:"+sha))

	// The promotion keeps it.
	g.Eventually(func(g Gomega) {
		c := canary(g)
		g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded))
		g.Expect(c.Status.Source).NotTo(BeNil())
		g.Expect(c.Status.Source.Revision).To(Equal("main@sha1:" + sha))
	}, 90*time.Second, 200*time.Millisecond).Should(Succeed())

	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}
