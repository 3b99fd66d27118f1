package gitwrite_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestGitea_PullRequests writes promotions to a real Gitea (bin/gitea,
// built by hack/gitea.sh) through pull requests: one merged, one closed
// without merging, and a push refused by a protected branch.
func TestGitea_PullRequests(t *testing.T) {
	g := NewWithT(t)
	gitea, err := testenv.StartGitea()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(gitea.Stop)
	repo, err := gitea.CreateRepo("platform", "config")
	g.Expect(err).NotTo(HaveOccurred())
	work := &testenv.GitRepo{Dir: t.TempDir()}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.email", "ada@localhost"},
		{"config", "user.name", "Ada"},
		{"config", "commit.gpgsign", "false"},
	} {
		_, err := work.Git(args...)
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err = work.Write("initial", map[string]string{"overlays/production/kustomization.yaml": kustomization})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = work.Git("push", "-q", repo.PushURL, "main")
	g.Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds := &gitsync.Credentials{Username: gitea.User, Password: gitea.Password}
	prs, err := gitwrite.NewGitea(repo.CloneURL, gitea.Token, nil)
	g.Expect(err).NotTo(HaveOccurred())
	w := newWriter()
	request := func(branch string, c gitwrite.Change) gitwrite.Request {
		return gitwrite.Request{URL: repo.CloneURL, Branch: branch, From: "main", Credentials: creds, Changes: []gitwrite.Change{c},
			Message: gitwrite.Message{Subject: "Promote podinfo to production", Trailers: []gitwrite.Trailer{{Key: "Sluice-Source-Stage", Value: "staging"}}}}
	}
	remoteMain := func() string {
		out, err := work.Git("ls-remote", repo.CloneURL, "refs/heads/main")
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	mainBefore := remoteMain()

	// 1. Merged: the branch is created from main, written once, and the
	// pull request opened once.
	res, err := w.Write(ctx, request("sluice/production-6.1.0", promote))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changed).To(BeTrue())
	g.Expect(remoteMain()).To(Equal(mainBefore), "main is changed only by the merge")
	again, err := w.Write(ctx, request("sluice/production-6.1.0", promote))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(gitwrite.Result{Changed: false, SHA: res.SHA, Attempts: 1}))

	opts := gitwrite.PullRequestOptions{Head: "sluice/production-6.1.0", Base: "main", Title: "Promote podinfo 6.1.0 to production", Body: "Verified in staging."}
	pr, err := prs.Open(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr.Open).To(BeTrue())
	g.Expect(pr.URL).To(ContainSubstring("/platform/config/pulls/"))
	same, err := prs.Open(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(same.Number).To(Equal(pr.Number), "a retried promotion finds its pull request")
	done, err := pr.Outcome()
	g.Expect(done).To(BeFalse())
	g.Expect(err).NotTo(HaveOccurred())

	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := gitea.API(http.MethodPost, fmt.Sprintf("/repos/platform/config/pulls/%d/merge", pr.Number), map[string]any{"Do": "merge"}, http.StatusOK, nil); err != nil {
			t.Error(err)
		}
	}()
	merged, err := gitwrite.WaitMerged(ctx, prs, pr.Number, 100*time.Millisecond)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(merged.Merged).To(BeTrue())
	g.Expect(merged.MergeSHA).To(HaveLen(40))
	g.Expect(remoteMain()).To(HavePrefix(merged.MergeSHA))
	// main holds the change now: writing it to main commits nothing.
	onMain, err := w.Write(ctx, gitwrite.Request{URL: repo.CloneURL, Branch: "main", Credentials: creds, Changes: []gitwrite.Change{promote}, Message: gitwrite.Message{Subject: "x"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(onMain.Changed).To(BeFalse())

	// 2. Closed without merging.
	other := gitwrite.KustomizeImage{Dir: "overlays/production", Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.2.0"}
	_, err = w.Write(ctx, request("sluice/production-6.2.0", other))
	g.Expect(err).NotTo(HaveOccurred())
	pr2, err := prs.Open(ctx, gitwrite.PullRequestOptions{Head: "sluice/production-6.2.0", Base: "main", Title: "Promote podinfo 6.2.0 to production"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr2.Number).NotTo(Equal(pr.Number))
	g.Expect(gitea.API(http.MethodPatch, fmt.Sprintf("/repos/platform/config/pulls/%d", pr2.Number), map[string]any{"state": "closed"}, http.StatusCreated, nil)).To(Succeed())
	_, err = gitwrite.WaitMerged(ctx, prs, pr2.Number, 100*time.Millisecond)
	g.Expect(err).To(MatchError(gitwrite.ErrPullRequestClosed))
	g.Expect(err.Error()).To(ContainSubstring(pr2.URL))

	// 3. A token that may only read cannot open one, and is not quoted.
	readOnly, err := gitea.NewToken("read-only", "read:repository")
	g.Expect(err).NotTo(HaveOccurred())
	ro, err := gitwrite.NewGitea(repo.CloneURL, readOnly, nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = ro.Open(ctx, gitwrite.PullRequestOptions{Head: "sluice/production-6.2.0", Base: "main", Title: "again"})
	g.Expect(err).To(MatchError(ContainSubstring("403")))
	g.Expect(err.Error()).NotTo(ContainSubstring(readOnly))

	// 4. A protected branch refuses direct pushes: ErrPushRejected with
	// Gitea's reason, and main does not move.
	g.Expect(gitea.API(http.MethodPost, "/repos/platform/config/branch_protections", map[string]any{"branch_name": "main", "enable_push": false}, http.StatusCreated, nil)).To(Succeed())
	head := remoteMain()
	_, err = w.Write(ctx, gitwrite.Request{URL: repo.CloneURL, Branch: "main", Credentials: creds, Changes: []gitwrite.Change{other}, Message: gitwrite.Message{Subject: "direct"}})
	t.Log(err)
	g.Expect(gitwrite.IsPushRejected(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("(error: Not allowed to push to protected branch main)"))
	g.Expect(err.Error()).NotTo(ContainSubstring(gitea.Password))
	g.Expect(remoteMain()).To(Equal(head))
}
