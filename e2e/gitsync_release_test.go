//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// appManifest renders an App's Deployment as a file for a Git repository.
func appManifest(g Gomega, a stack.App) string {
	d := a.Deployment()
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	out, err := yaml.Marshal(d)
	g.Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// TestGitSync_ACommitReleases is scenario 6: the app and its Canary live in
// a local Git repository; a commit of a new version is the whole release:
// GitSync applies it, the engine analyses it under live traffic and
// promotes it. Nobody touches the cluster.
func TestGitSync_ACommitReleases(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario6")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given a repository holding podinfo 1.0.0 and its Canary
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("apps")
	g.Expect(err).NotTo(HaveOccurred())
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	_, err = repo.Write("podinfo 1.0.0", map[string]string{
		"podinfo/deployment.yaml": appManifest(g, v1),
		"podinfo/canary.yaml":     "apiVersion: sluice.dev/v1beta1\nkind: Canary\n" + gatewayCanary(ns, host),
	})
	g.Expect(err).NotTo(HaveOccurred())

	// and a GitSync of it (the cluster's only link to the repository)
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      repo.URL,
			Path:     "podinfo",
			Interval: &metav1.Duration{Duration: 2 * time.Second},
		},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)

	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "podinfo 1.0.0 does not answer through Traefik: %s", load.Counts())

	// When 1.1.0 is committed
	v2 := v1
	v2.Version = "1.1.0"
	sha, err := repo.Write("podinfo 1.1.0", map[string]string{"podinfo/deployment.yaml": appManifest(g, v2)})
	g.Expect(err).NotTo(HaveOccurred())

	// Then GitSync applies the commit, and the engine releases it as a canary
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic observed while Progressing:%s", r.phases, describeSplits(r))
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	g.Expect(r.phases).To(ContainElement(sluicev1beta1.CanaryPhaseProgressing))
	g.Expect(r.progressing.ByVersion["1.1.0"]).To(BeNumerically(">", 0), "the canary never served while Progressing")
	g.Expect(r.progressing.ByVersion["1.0.0"]).To(BeNumerically(">", 0), "all traffic moved at once: not a canary release")
	checked := expectSplitFollowsWeights(g, r, "1.1.0", 40, 0.1)
	g.Expect(checked).NotTo(BeEmpty(), "no step had enough traffic to check the split:%s", describeSplits(r))

	applied := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), applied)).To(Succeed())
	g.Expect(applied.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))

	// and the primary serves 1.1.0 to everyone.
	g.Eventually(func() float64 {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		return load.Counts().Sub(before).Share("1.1.0")
	}, 30*time.Second).Should(BeNumerically("==", 1))
}

// release updates the Deployment of key to app's version, error rate and
// latency, retrying on conflicts with the engine (which scales the target).
func release(ctx context.Context, g Gomega, key client.ObjectKey, app stack.App) {
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, key, d); err != nil {
			return err
		}
		app.Release(d)
		return env.Client.Update(ctx, d)
	})).To(Succeed())
}
