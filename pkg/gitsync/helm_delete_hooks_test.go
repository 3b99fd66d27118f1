package gitsync_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// deletableChart has the Deployment web, two weighted pre-delete Jobs
// (pre-b runs first: its weight is lower though its name sorts last; both
// hook-succeeded) and a post-delete Job post-del (kept, Helm's default).
func deletableChart() testenv.Chart {
	return testenv.Chart{Name: "deletable", Version: "1.0.0", Files: map[string]string{
		"templates/web.yaml":  deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1),
		"templates/pre1.yaml": hookJob("pre-b", "pre-delete", -1, "hook-succeeded"),
		"templates/pre2.yaml": hookJob("pre-a", "pre-delete", 1, "hook-succeeded"),
		"templates/post.yaml": hookJob("post-del", "post-delete", 0, ""),
		"templates/inst.yaml": hookJob("post-inst", "post-install", 0, "hook-succeeded"),
	}}
}

func deploymentExists(g Gomega, ns, name string) {
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &appsv1.Deployment{})).To(Succeed())
}

// installChart creates a GitSync of chart under the private manager id and
// waits until the release is Deployed with its delete hooks stored.
func installChart(t *testing.T, ns, name, id, url string, chart string) {
	t.Helper()
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	newGitSync(t, ns, name, fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Labels = map[string]string{privateManagerLabel: id}
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: url, Name: chart}, Version: "1.0.0"},
		}
	})
}

// TestGitSync_HelmDeleteHooks: deleting a chart's GitSync runs its
// pre-delete hooks in weight order while its objects still exist, across a
// restart of Sluice, then prunes, then runs its post-delete hook, and only
// then lets the GitSync go; hook-succeeded deletes the pre-delete hooks.
func TestGitSync_HelmDeleteHooks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(deletableChart())).To(Succeed())
	_, stop := startManager(t, "helmdelete", nil)
	installChart(t, ns, "rel", "helmdelete", charts.URL, "deletable")
	g.Eventually(func(g Gomega) { getJob(g, ns, "post-inst") }, wait).Should(Succeed())
	finishJob(g, ns, "post-inst", true, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "rel")
		gs := getGitSync(g, ns, "rel")
		g.Expect(gs.Status.Helm.History).To(HaveLen(1))
		g.Expect(gs.Status.Helm.History[0].DeleteHooksDigest).To(HavePrefix("sha256:"))
		g.Expect(gs.Status.Helm.SkippedHooks).To(BeZero(), "delete hooks are run, not skipped")
	}, wait).Should(Succeed())
	s, err := releaseSecret(ns, "sluice-helm-rel-v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Data).To(HaveKey("deleteHooks.json.gz"))
	for _, n := range []string{"pre-a", "pre-b", "post-del"} {
		gone(g, &batchv1.Job{}, ns, n, "delete hooks do not run at install")
	}

	g.Expect(env.Client.Delete(ctx, getGitSync(g, ns, "rel"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		getJob(g, ns, "pre-b")
		g.Expect(hooksOf(g, ns, "rel").Running).To(Equal("Job/pre-b"))
	}, wait).Should(Succeed())
	deploymentExists(g, ns, "web")
	gone(g, &batchv1.Job{}, ns, "pre-a", "one hook at a time, in weight order")
	g.Expect(hooksOf(g, ns, "rel").Phase).To(BeEquivalentTo("pre-delete"))

	// A restart in the middle of the deletion continues from status.
	stop()
	uid := getJob(g, ns, "pre-b").UID
	finishJob(g, ns, "pre-b", true, "")
	_, stop = startManager(t, "helmdelete", nil)
	defer stop()
	g.Eventually(func(g Gomega) { getJob(g, ns, "pre-a") }, wait).Should(Succeed())
	g.Expect(getJob(g, ns, "pre-b").UID).To(Equal(uid), "the hook that ran is not run again")
	deploymentExists(g, ns, "web")
	finishJob(g, ns, "pre-a", true, "")

	g.Eventually(func(g Gomega) {
		getJob(g, ns, "post-del")
		gone(g, &appsv1.Deployment{}, ns, "web", "pruned after the pre-delete hooks")
		gone(g, &batchv1.Job{}, ns, "pre-a", "hook-succeeded")
		gone(g, &batchv1.Job{}, ns, "pre-b", "hook-succeeded")
		g.Expect(hooksOf(g, ns, "rel").Phase).To(BeEquivalentTo("post-delete"))
	}, wait).Should(Succeed())
	finishJob(g, ns, "post-del", true, "")
	g.Eventually(func(g Gomega) {
		gone(g, &sluicev1beta1.GitSync{}, ns, "rel", "the finalizer goes after the post-delete hook")
	}, wait).Should(Succeed())
	getJob(g, ns, "post-del") // no hook-succeeded: kept, as Helm keeps it
}

// TestGitSync_HelmDeleteHookFails: a failing pre-delete hook does not keep
// the GitSync forever: it is reported (a Warning event naming the hook)
// and the deletion goes on (the objects are pruned); hook-failed deletes it.
func TestGitSync_HelmDeleteHookFails(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(testenv.Chart{Name: "doomed", Version: "1.0.0", Files: map[string]string{
		"templates/web.yaml":   deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1),
		"templates/check.yaml": hookJob("check", "pre-delete", 0, "hook-failed"),
	}})).To(Succeed())
	_, stop := startManager(t, "helmdelfail", nil)
	defer stop()
	installChart(t, ns, "doomed", "helmdelfail", charts.URL, "doomed")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "doomed")
		g.Expect(getGitSync(g, ns, "doomed").Status.Helm.History).To(HaveLen(1))
	}, wait).Should(Succeed())

	g.Expect(env.Client.Delete(ctx, getGitSync(g, ns, "doomed"))).To(Succeed())
	g.Eventually(func(g Gomega) { getJob(g, ns, "check") }, wait).Should(Succeed())
	deploymentExists(g, ns, "web")
	finishJob(g, ns, "check", false, "cleanup failed")
	g.Eventually(func(g Gomega) {
		gone(g, &sluicev1beta1.GitSync{}, ns, "doomed", "the deletion goes on")
		gone(g, &appsv1.Deployment{}, ns, "web", "pruned")
		gone(g, &batchv1.Job{}, ns, "check", "hook-failed")
	}, wait).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var evs eventsv1.EventList
		g.Expect(env.Client.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range evs.Items {
			if e.Reason == gitsync.ReasonHelmHookFailed && e.Type == "Warning" {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ContainElement("pre-delete hook Job/check (doomed/templates/check.yaml) of chart doomed 1.0.0 failed: " +
			"BackoffLimitExceeded: cleanup failed; the deletion goes on"))
	}, wait).Should(Succeed())
}

// TestGitSync_HelmDeleteHooksNeedPrune: with spec.prune false the
// finalizer prunes nothing, so no delete hook runs either (the existing
// finalizer rule; a suspended GitSync is the same).
func TestGitSync_HelmDeleteHooksNeedPrune(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(testenv.Chart{Name: "kept", Version: "1.0.0", Files: map[string]string{
		"templates/web.yaml":   deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1),
		"templates/check.yaml": hookJob("check", "pre-delete,post-delete", 0, ""),
	}})).To(Succeed())
	_, stop := startManager(t, "helmdelkeep", nil)
	defer stop()
	installChart(t, ns, "kept", "helmdelkeep", charts.URL, "kept")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "kept")
		g.Expect(getGitSync(g, ns, "kept").Status.Helm.History).To(HaveLen(1))
	}, wait).Should(Succeed())
	gs := getGitSync(g, ns, "kept")
	off := false
	gs.Spec.Prune = &off
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) { gone(g, &sluicev1beta1.GitSync{}, ns, "kept", "deleted") }, wait).Should(Succeed())
	deploymentExists(g, ns, "web")
	gone(g, &batchv1.Job{}, ns, "check", "no prune, no delete hook")
}
