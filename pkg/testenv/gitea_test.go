package testenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestGitea runs a real Gitea and walks the paths a commit-status provider
// and GitSync use: a repository created through the API, a commit pushed and
// cloned over HTTP with go-git, commit statuses posted with the documented
// request and read back, and the refusals of a wrong token and of a token
// without the repository write scope.
func TestGitea(t *testing.T) {
	g := NewWithT(t)
	gitea, err := testenv.StartGitea()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(gitea.Stop)
	t.Logf("gitea answered %s after %s", gitea.URL, gitea.StartupTime)

	repo, err := gitea.CreateRepo(gitea.User, "app")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.CloneURL).To(Equal(gitea.URL + "/" + gitea.User + "/app.git"))
	sha := pushCommit(t, repo.PushURL, "deploy.yaml", "replicas: 3\n")

	t.Run("clone over HTTP", func(t *testing.T) {
		g := NewWithT(t)
		dir := t.TempDir()
		cloned, err := git.PlainClone(dir, false, &git.CloneOptions{URL: repo.CloneURL, ReferenceName: plumbing.NewBranchReferenceName("main")})
		g.Expect(err).NotTo(HaveOccurred())
		head, err := cloned.Head()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(head.Hash().String()).To(Equal(sha))
		g.Expect(os.ReadFile(filepath.Join(dir, "deploy.yaml"))).To(BeEquivalentTo("replicas: 3\n"))
	})

	t.Run("push needs credentials", func(t *testing.T) {
		g := NewWithT(t)
		r := initRepo(t, "other.yaml", "x: 1\n")
		_, err := r.CreateRemote(&config.RemoteConfig{Name: "anon", URLs: []string{repo.CloneURL}})
		g.Expect(err).NotTo(HaveOccurred())
		err = r.Push(&git.PushOptions{RemoteName: "anon", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/anon"}})
		g.Expect(err).To(HaveOccurred())
		// With the admin's password as basic auth (as a Secret would give it).
		err = r.Push(&git.PushOptions{RemoteName: "anon", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/anon"},
			Auth: &githttp.BasicAuth{Username: gitea.User, Password: gitea.Password}})
		g.Expect(err).NotTo(HaveOccurred())
	})

	t.Run("commit status round trip", func(t *testing.T) {
		g := NewWithT(t)
		code, body := postStatus(t, gitea.APIURL+"/repos/"+gitea.User+"/app/statuses/"+sha, gitea.Token, map[string]string{
			"state": "pending", "target_url": "https://sluice.example/canaries/prod/app",
			"description": "Canary prod/app: weight 10%", "context": "sluice/prod/app",
		})
		g.Expect(code).To(Equal(http.StatusCreated), body)
		var created testenv.GiteaCommitStatus
		g.Expect(json.Unmarshal([]byte(body), &created)).To(Succeed())
		g.Expect(created.State).To(Equal("pending"))

		code, body = postStatus(t, gitea.APIURL+"/repos/"+gitea.User+"/app/statuses/"+sha, gitea.Token, map[string]string{
			"state": "success", "target_url": "https://sluice.example/canaries/prod/app",
			"description": "Canary prod/app: promoted", "context": "sluice/prod/app",
		})
		g.Expect(code).To(Equal(http.StatusCreated), body)

		statuses, err := gitea.ListStatuses(gitea.User, "app", sha)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(statuses).To(HaveLen(2))
		first, second := statuses[0], statuses[1]
		g.Expect(first.ID).To(Equal(created.ID))
		g.Expect(first.State).To(Equal("pending"))
		g.Expect(first.Description).To(Equal("Canary prod/app: weight 10%"))
		g.Expect(second.State).To(Equal("success"))
		g.Expect(second.TargetURL).To(Equal("https://sluice.example/canaries/prod/app"))
		g.Expect(second.Description).To(Equal("Canary prod/app: promoted"))
		g.Expect(second.Context).To(Equal("sluice/prod/app"))
		g.Expect(second.Creator.Login).To(Equal(gitea.User))
		g.Expect(second.CreatedAt).To(BeTemporally("~", time.Now(), time.Minute))

		// The combined status of the branch is the newest per context.
		var combined struct {
			State    string `json:"state"`
			SHA      string `json:"sha"`
			Statuses []testenv.GiteaCommitStatus
		}
		g.Expect(gitea.API(http.MethodGet, "/repos/"+gitea.User+"/app/commits/main/status", nil, http.StatusOK, &combined)).To(Succeed())
		g.Expect(combined.State).To(Equal("success"))
		g.Expect(combined.SHA).To(Equal(sha))
		g.Expect(combined.Statuses).To(HaveLen(1))
	})

	t.Run("wrong token is refused", func(t *testing.T) {
		g := NewWithT(t)
		code, body := postStatus(t, gitea.APIURL+"/repos/"+gitea.User+"/app/statuses/"+sha, "0123456789abcdef0123456789abcdef01234567",
			map[string]string{"state": "failure", "context": "sluice/wrong-token"})
		g.Expect(code).To(Equal(http.StatusUnauthorized), body)

		// A real token without write:repository may read but not post.
		readOnly, err := gitea.NewToken("read-only", "read:repository")
		g.Expect(err).NotTo(HaveOccurred())
		code, body = postStatus(t, gitea.APIURL+"/repos/"+gitea.User+"/app/statuses/"+sha, readOnly,
			map[string]string{"state": "failure", "context": "sluice/read-only"})
		g.Expect(code).To(Equal(http.StatusForbidden), body)

		statuses, err := gitea.ListStatuses(gitea.User, "app", sha)
		g.Expect(err).NotTo(HaveOccurred())
		for _, s := range statuses {
			g.Expect(s.Context).To(Equal("sluice/prod/app"))
		}
	})

	t.Run("repository of an organisation", func(t *testing.T) {
		g := NewWithT(t)
		orgRepo, err := gitea.CreateRepo("platform", "config")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(orgRepo.CloneURL).To(Equal(gitea.URL + "/platform/config.git"))
		orgSHA := pushCommit(t, orgRepo.PushURL, "kustomization.yaml", "resources: []\n")
		g.Expect(gitea.API(http.MethodPost, "/repos/platform/config/statuses/"+orgSHA,
			map[string]string{"state": "error", "context": "sluice/gitsync"}, http.StatusCreated, nil)).To(Succeed())
		statuses, err := gitea.ListStatuses("platform", "config", orgSHA)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(statuses).To(HaveLen(1))
		g.Expect(statuses[0].State).To(Equal("error"))

		// A second repository in the same organisation reuses it.
		_, err = gitea.CreateRepo("platform", "apps")
		g.Expect(err).NotTo(HaveOccurred())
	})

	t.Run("unknown repository", func(t *testing.T) {
		g := NewWithT(t)
		_, err := gitea.ListStatuses(gitea.User, "missing", sha)
		var status *testenv.GiteaStatusError
		g.Expect(errors.As(err, &status)).To(BeTrue(), "%v", err)
		g.Expect(status.Code).To(Equal(http.StatusNotFound))
	})
}

// initRepo makes a local repository on branch main with one commit of file.
func initRepo(t *testing.T, file, content string) *git.Repository {
	t.Helper()
	g := NewWithT(t)
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600)).To(Succeed())
	wt, err := r.Worktree()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = wt.Add(file)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = wt.Commit("add "+file, &git.CommitOptions{Author: &object.Signature{Name: "sluice", Email: "sluice@localhost", When: time.Now()}})
	g.Expect(err).NotTo(HaveOccurred())
	return r
}

// pushCommit pushes a new commit of file to branch main at pushURL (which
// carries the credentials) with go-git, and returns its sha.
func pushCommit(t *testing.T, pushURL, file, content string) string {
	t.Helper()
	g := NewWithT(t)
	r := initRepo(t, file, content)
	_, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{pushURL}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})).To(Succeed())
	head, err := r.Head()
	g.Expect(err).NotTo(HaveOccurred())
	return head.Hash().String()
}

// postStatus sends the request of Gitea's API documentation for a commit
// status and returns the answer's code and body.
func postStatus(t *testing.T, url, token string, body map[string]string) (int, string) {
	t.Helper()
	g := NewWithT(t)
	data, err := json.Marshal(body)
	g.Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(data))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(answer)
}
