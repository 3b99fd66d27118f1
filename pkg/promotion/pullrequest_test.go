package promotion_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// A stage with push.strategy PullRequest on a real Gitea: the bundle goes
// to a branch of its own and one pull request, opened once however often
// the reconciler runs; its merge commit is the stage's commit. A pull
// request closed unmerged fails the bundle.
func TestReconciler_PullRequestOnGitea(t *testing.T) {
	f := newFixture(t)
	g := f.g
	gitea, err := testenv.StartGitea()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(gitea.Stop)
	repo, err := gitea.CreateRepo("platform", "deploy")
	g.Expect(err).NotTo(HaveOccurred())
	work := &testenv.GitRepo{Dir: t.TempDir()}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"config", "user.email", "ada@localhost"}, {"config", "user.name", "Ada"}, {"config", "commit.gpgsign", "false"},
	} {
		_, err := work.Git(args...)
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err = work.Write("overlays", map[string]string{
		"deploy/staging/kustomization.yaml": fmt.Sprintf("images:\n  - name: %s\n    newTag: 1.0.0\n", f.image),
	})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = work.Git("push", "-q", repo.PushURL, "main")
	g.Expect(err).NotTo(HaveOccurred())
	remoteMain := func() string {
		out, err := work.Git("ls-remote", repo.CloneURL, "refs/heads/main")
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	mainBefore := remoteMain()

	for name, data := range map[string]map[string][]byte{
		"gitea":       {"username": []byte(gitea.User), "password": []byte(gitea.Password)},
		"gitea-token": {"token": []byte(gitea.Token)},
	} {
		g.Expect(f.env.Client.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Data: data})).To(Succeed())
	}
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[0].Git = sluicev1beta1.PipelineGit{
			URL: repo.CloneURL, SecretRef: &corev1.LocalObjectReference{Name: "gitea"}, Path: "deploy/staging",
			Push: &sluicev1beta1.PipelinePush{Strategy: sluicev1beta1.PushPullRequest, Provider: sluicev1beta1.GitProviderGitea,
				SecretRef: &corev1.LocalObjectReference{Name: "gitea-token"}},
		}
	})
	digest := f.push("1.1.0")
	t0 := time.Now().UTC().Truncate(time.Second)
	f.reconcile(f.r, t0)
	staging := stageOf(f.get(), "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StagePending))
	g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestOpen))
	g.Expect(staging.PullRequest).To(MatchRegexp(`/platform/deploy/pulls/1$`))
	g.Expect(remoteMain()).To(Equal(mainBefore), "main changes only by the merge")

	// Decided again, by a restarted reconciler too: the same pull request.
	f.reconcile(f.r, t0.Add(time.Second))
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(2*time.Second))
	g.Expect(stageOf(f.get(), "staging").PullRequest).To(Equal(staging.PullRequest))
	var pulls []map[string]any
	g.Expect(gitea.API(http.MethodGet, "/repos/platform/deploy/pulls?state=all", nil, http.StatusOK, &pulls)).To(Succeed())
	g.Expect(pulls).To(HaveLen(1))

	// Merged: the merge commit is the stage's commit.
	g.Expect(gitea.API(http.MethodPost, "/repos/platform/deploy/pulls/1/merge", map[string]any{"Do": "merge"}, http.StatusOK, nil)).To(Succeed())
	f.reconcile(f.r, t0.Add(3*time.Second))
	staging = stageOf(f.get(), "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(staging.PullRequest).To(BeEmpty())
	g.Expect(remoteMain()).To(HavePrefix(staging.Commit))
	out, err := work.Git("fetch", "-q", repo.CloneURL, "main")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(work.Git("show", "FETCH_HEAD:deploy/staging/kustomization.yaml")).To(ContainSubstring("digest: " + digest))

	// Staging verified it; a newer tag goes to a second pull request,
	// which is closed unmerged: the bundle fails there.
	f.release("web-staging", staging.Commit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(4*time.Second))
	f.push("1.2.0")
	f.reconcile(f.r, t0.Add(time.Minute))
	second := stageOf(f.get(), "staging")
	g.Expect(second.PullRequest).To(MatchRegexp(`/pulls/2$`))
	g.Expect(gitea.API(http.MethodPatch, "/repos/platform/deploy/pulls/2", map[string]any{"state": "closed"}, http.StatusCreated, nil)).To(Succeed())
	f.reconcile(f.r, t0.Add(time.Minute+time.Second))
	second = stageOf(f.get(), "staging")
	g.Expect(second.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(second.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestClosed))
	for _, secret := range []string{gitea.Password, gitea.Token} {
		g.Expect(f.logs.String()).NotTo(ContainSubstring(secret))
		g.Expect(fmt.Sprint(f.get().Status)).NotTo(ContainSubstring(secret))
	}
}
