package commitstatus_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestGitea_RealServer posts statuses through the gitea provider to a real
// Gitea (bin/gitea, built by hack/gitea.sh) and reads them back through its
// API: what the documented-request tests assume, the real host accepts.
func TestGitea_RealServer(t *testing.T) {
	g := NewWithT(t)
	gitea, err := testenv.StartGitea()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(gitea.Stop)
	repo, err := gitea.CreateRepo("platform", "apps")
	g.Expect(err).NotTo(HaveOccurred())

	work := &testenv.GitRepo{Dir: t.TempDir()}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.email", "ada@localhost"},
		{"config", "user.name", "Ada"},
	} {
		_, err := work.Git(args...)
		g.Expect(err).NotTo(HaveOccurred())
	}
	sha, err := work.Write("podinfo 1.1.0", map[string]string{"deploy.yaml": "replicas: 3\n"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = work.Git("push", "-q", repo.PushURL, "main")
	g.Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No address: the API base comes from the clone URL, as for a GitSync
	// whose spec.url is the Gitea repository.
	p, err := commitstatus.New(commitstatus.Config{Type: commitstatus.Gitea, URL: repo.CloneURL, Token: gitea.Token, Backoff: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	const context = "sluice/gitsync/apps/podinfo"
	long := strings.Repeat("d", 400)
	g.Expect(p.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: context, Description: "Applying"})).To(Succeed())
	g.Expect(p.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Failure, Context: context,
		Description: "BuildFailed: " + long, TargetURL: "https://sluice.example.com/gitsyncs/apps/podinfo"})).To(Succeed())
	g.Expect(p.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "sluice/canary/apps/podinfo", Description: "Promoted"})).To(Succeed())

	statuses, err := gitea.ListStatuses(repo.Owner, repo.Name, sha)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(statuses).To(HaveLen(3))
	g.Expect(statuses[0].State).To(Equal("pending"))
	g.Expect(statuses[0].Context).To(Equal(context))
	g.Expect(statuses[0].Description).To(Equal("Applying"))
	g.Expect(statuses[0].Creator.Login).To(Equal(gitea.User))
	g.Expect(statuses[1].State).To(Equal("failure"))
	g.Expect(statuses[1].TargetURL).To(Equal("https://sluice.example.com/gitsyncs/apps/podinfo"))
	g.Expect(statuses[1].Description).To(HavePrefix("BuildFailed: ddd"), "the host kept the cut description")
	g.Expect(len(statuses[1].Description)).To(BeNumerically("<", len(long)))
	g.Expect(statuses[2].State).To(Equal("success"))
	g.Expect(statuses[2].Context).To(Equal("sluice/canary/apps/podinfo"))

	// A wrong token is refused, not retried, and is not in the error.
	bad, err := commitstatus.New(commitstatus.Config{Type: commitstatus.Gitea, URL: repo.CloneURL, Token: "0123456789abcdef-wrong-token", Backoff: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	err = bad.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: context})
	var he *commitstatus.HTTPError
	g.Expect(errors.As(err, &he)).To(BeTrue(), "%v", err)
	g.Expect(he.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(err.Error()).NotTo(ContainSubstring("wrong-token"))

	// A token that may only read repositories is refused with 403.
	readOnly, err := gitea.NewToken("read-only", "read:repository")
	g.Expect(err).NotTo(HaveOccurred())
	ro, err := commitstatus.New(commitstatus.Config{Type: commitstatus.Gitea, URL: repo.CloneURL, Token: readOnly, Backoff: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	err = ro.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: context})
	g.Expect(errors.As(err, &he)).To(BeTrue(), "%v", err)
	g.Expect(he.StatusCode).To(Equal(http.StatusForbidden))

	statuses, err = gitea.ListStatuses(repo.Owner, repo.Name, sha)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(statuses).To(HaveLen(3), "refused posts added nothing")
}
