package promotion_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/promotion"
)

const vendorToken = "glpat-v3ndor-t0ken-value"

// vendorPR is a pull (merge) request the fake host holds.
type vendorPR struct {
	number                  int64
	head, base, title, body string
	state                   string // open, merged or closed
	headSHA, mergeSHA       string
}

// vendorHost is a fake GitHub Enterprise Server or self-managed GitLab: it
// answers the documented pull (merge) request calls, checks their auth and
// version headers, and serves the repository's Git over HTTP from the
// fixture's real Git server, as those hosts serve both on one address.
type vendorHost struct {
	t        *testing.T
	provider sluicev1beta1.GitProvider
	srv      *httptest.Server
	git      *httputil.ReverseProxy

	mu    sync.Mutex
	prs   []*vendorPR
	posts int
}

func newVendorHost(t *testing.T, f *fixture, provider sluicev1beta1.GitProvider) *vendorHost {
	gitURL, err := url.Parse(strings.TrimSuffix(f.repo.URL, "/deploy/.git"))
	if err != nil {
		t.Fatal(err)
	}
	v := &vendorHost{t: t, provider: provider, git: httputil.NewSingleHostReverseProxy(gitURL)}
	v.srv = httptest.NewServer(v)
	t.Cleanup(v.srv.Close)
	return v
}

// repoURL is the clone URL of platform/deploy on the host.
func (v *vendorHost) repoURL() string { return v.srv.URL + "/platform/deploy.git" }

func (v *vendorHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, "/platform/deploy.git/"):
		r = r.Clone(r.Context())
		r.URL.Path, r.URL.RawPath = "/deploy/.git/"+strings.TrimPrefix(r.URL.Path, "/platform/deploy.git/"), ""
		v.git.ServeHTTP(w, r)
	case v.provider == sluicev1beta1.GitProviderGitHub && strings.HasPrefix(path, "/api/v3/repos/platform/deploy/pulls"):
		if r.Header.Get("Authorization") != "Bearer "+vendorToken || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" ||
			r.Header.Get("Accept") != "application/vnd.github+json" {
			v.reply(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
			return
		}
		v.github(w, r, strings.TrimPrefix(path, "/api/v3/repos/platform/deploy/pulls"))
	case v.provider == sluicev1beta1.GitProviderGitLab && strings.HasPrefix(path, "/api/v4/projects/platform%2Fdeploy/merge_requests"):
		if r.Header.Get("PRIVATE-TOKEN") != vendorToken || r.Header.Get("Authorization") != "" {
			v.reply(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
			return
		}
		v.gitlab(w, r, strings.TrimPrefix(path, "/api/v4/projects/platform%2Fdeploy/merge_requests"))
	default:
		v.t.Errorf("unexpected call %s %s", r.Method, path)
		v.reply(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	}
}

func (v *vendorHost) reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// create decodes a POST body with exactly the fields named.
func (v *vendorHost) create(r *http.Request, fields ...string) (map[string]string, bool) {
	raw, _ := io.ReadAll(r.Body)
	var in map[string]string
	if err := json.Unmarshal(raw, &in); err != nil || len(in) != len(fields) || r.Header.Get("Content-Type") != "application/json" {
		v.t.Errorf("POST %s: body %s, want the fields %v as JSON", r.URL.Path, raw, fields)
		return nil, false
	}
	for _, k := range fields {
		if in[k] == "" {
			v.t.Errorf("POST %s: no %s in %s", r.URL.Path, k, raw)
			return nil, false
		}
	}
	return in, true
}

// lookup finds the pull request of a path's "/{number}", under the lock.
func (v *vendorHost) lookup(rest string) *vendorPR {
	n, err := strconv.ParseInt(strings.TrimPrefix(rest, "/"), 10, 64)
	if err != nil {
		return nil
	}
	for _, pr := range v.prs {
		if pr.number == n {
			return pr
		}
	}
	return nil
}

func (v *vendorHost) github(w http.ResponseWriter, r *http.Request, rest string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && rest == "":
		if q.Get("state") != "open" || !strings.HasPrefix(q.Get("head"), "platform:") || q.Get("base") == "" {
			v.t.Errorf("GET pulls?%s: want state=open, head=platform:<branch> and base", r.URL.RawQuery)
		}
		out := []any{}
		for _, pr := range v.prs {
			if pr.state == "open" && "platform:"+pr.head == q.Get("head") && pr.base == q.Get("base") {
				out = append(out, v.githubPR(pr))
			}
		}
		v.reply(w, http.StatusOK, out)
	case r.Method == http.MethodPost && rest == "":
		in, ok := v.create(r, "title", "head", "base", "body")
		if !ok {
			v.reply(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
			return
		}
		v.posts++
		for _, pr := range v.prs {
			if pr.state == "open" && pr.head == in["head"] {
				v.reply(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
					"errors": []any{map[string]any{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for platform:" + pr.head + "."}}})
				return
			}
		}
		pr := &vendorPR{number: int64(len(v.prs) + 1), head: in["head"], base: in["base"], title: in["title"], body: in["body"], state: "open"}
		v.prs = append(v.prs, pr)
		v.reply(w, http.StatusCreated, v.githubPR(pr))
	case r.Method == http.MethodGet:
		pr := v.lookup(rest)
		if pr == nil {
			v.reply(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
			return
		}
		v.reply(w, http.StatusOK, v.githubPR(pr))
	default:
		v.t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
	}
}

func (v *vendorHost) githubPR(pr *vendorPR) map[string]any {
	out := map[string]any{"number": pr.number, "html_url": fmt.Sprintf("%s/platform/deploy/pull/%d", v.srv.URL, pr.number),
		"state": "open", "merged": false, "merged_at": nil, "title": pr.title, "body": pr.body,
		// Before the merge, GitHub's merge_commit_sha is a test merge.
		"merge_commit_sha": "0000000000000000000000000000000000000abc",
		"head":             map[string]any{"ref": pr.head}, "base": map[string]any{"ref": pr.base}}
	switch pr.state {
	case "merged":
		out["state"], out["merged"], out["merged_at"], out["merge_commit_sha"] = "closed", true, "2026-12-07T05:00:00Z", pr.mergeSHA
	case "closed":
		out["state"] = "closed"
	}
	return out
}

func (v *vendorHost) gitlab(w http.ResponseWriter, r *http.Request, rest string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && rest == "":
		if q.Get("state") != "opened" || q.Get("source_branch") == "" || q.Get("target_branch") == "" {
			v.t.Errorf("GET merge_requests?%s: want state=opened, source_branch and target_branch", r.URL.RawQuery)
		}
		out := []any{}
		for _, pr := range v.prs {
			if pr.state == "open" && pr.head == q.Get("source_branch") && pr.base == q.Get("target_branch") {
				out = append(out, v.gitlabMR(pr))
			}
		}
		v.reply(w, http.StatusOK, out)
	case r.Method == http.MethodPost && rest == "":
		in, ok := v.create(r, "source_branch", "target_branch", "title", "description")
		if !ok {
			v.reply(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request"})
			return
		}
		v.posts++
		for _, pr := range v.prs {
			if pr.state == "open" && pr.head == in["source_branch"] {
				v.reply(w, http.StatusConflict, map[string]any{"message": []string{fmt.Sprintf("Another open merge request already exists for this source branch: !%d", pr.number)}})
				return
			}
		}
		pr := &vendorPR{number: int64(len(v.prs) + 1), head: in["source_branch"], base: in["target_branch"], title: in["title"], body: in["description"], state: "open"}
		v.prs = append(v.prs, pr)
		v.reply(w, http.StatusCreated, v.gitlabMR(pr))
	case r.Method == http.MethodGet:
		pr := v.lookup(rest)
		if pr == nil {
			v.reply(w, http.StatusNotFound, map[string]any{"message": "404 Not found"})
			return
		}
		v.reply(w, http.StatusOK, v.gitlabMR(pr))
	default:
		v.t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
	}
}

func (v *vendorHost) gitlabMR(pr *vendorPR) map[string]any {
	state := map[string]string{"open": "opened", "merged": "merged", "closed": "closed"}[pr.state]
	// A fast-forward merge has no merge commit: the source's head is the
	// target's.
	return map[string]any{"id": 1000 + pr.number, "iid": pr.number, "project_id": 42, "state": state, "title": pr.title, "description": pr.body,
		"source_branch": pr.head, "target_branch": pr.base, "sha": pr.headSHA, "merge_commit_sha": nil, "squash_commit_sha": nil,
		"web_url": fmt.Sprintf("%s/platform/deploy/-/merge_requests/%d", v.srv.URL, pr.number)}
}

// merge merges the pull request in the repository the way the host does:
// GitHub with a merge commit, GitLab fast-forward (a project with
// merge_method ff).
func (v *vendorHost) merge(f *fixture, number int64) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	pr := v.prs[number-1]
	pr.headSHA = f.git("rev-parse", pr.head)
	if v.provider == sluicev1beta1.GitProviderGitLab {
		f.git("merge", "--ff-only", pr.head)
	} else {
		f.git("merge", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from platform/%s", number, pr.head), pr.head)
	}
	pr.state, pr.mergeSHA = "merged", f.head()
	return pr.mergeSHA
}

func (v *vendorHost) close(number int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.prs[number-1].state = "closed"
}

// pr is a copy of pull request number.
func (v *vendorHost) pr(number int64) vendorPR {
	v.mu.Lock()
	defer v.mu.Unlock()
	return *v.prs[number-1]
}

func (v *vendorHost) count() (prs, posts int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.prs), v.posts
}

// A stage with push.strategy PullRequest on GitHub (Enterprise Server) and
// on GitLab: a token the host refuses is InvalidGitTarget; with the right
// one, one pull request is opened however often the reconciler runs,
// carrying the provenance; its merge commit (GitLab: the fast-forwarded
// head) is the stage's commit; a pull request closed unmerged fails the
// bundle. The token is in no log and no status.
func TestReconciler_PullRequestOnGitHubAndGitLab(t *testing.T) {
	for _, tc := range []struct {
		provider sluicev1beta1.GitProvider
		page     string
	}{
		{provider: sluicev1beta1.GitProviderGitHub, page: "/platform/deploy/pull/"},
		{provider: sluicev1beta1.GitProviderGitLab, page: "/platform/deploy/-/merge_requests/"},
	} {
		t.Run(string(tc.provider), func(t *testing.T) {
			f := newFixture(t)
			g := f.g
			host := newVendorHost(t, f, tc.provider)
			token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "api-token"}, Data: map[string][]byte{"token": []byte("not-" + vendorToken)}}
			g.Expect(f.env.Client.Create(f.ctx, token)).To(Succeed())
			f.pipeline(func(p *sluicev1beta1.Pipeline) {
				p.Spec.Stages[0].Git = sluicev1beta1.PipelineGit{
					URL: host.repoURL(), Branch: "main", SecretRef: &corev1.LocalObjectReference{Name: "git"}, Path: "deploy/staging",
					Push: &sluicev1beta1.PipelinePush{Strategy: sluicev1beta1.PushPullRequest, Provider: tc.provider,
						SecretRef: &corev1.LocalObjectReference{Name: "api-token"}},
				}
			})
			mainBefore := f.head()
			digest := f.push("1.1.0")
			t0 := time.Now().UTC().Truncate(time.Second)

			// A refused token: the branch is written, no pull request, and
			// the stage says why.
			f.reconcile(f.r, t0)
			staging := stageOf(f.get(), "staging")
			g.Expect(staging.State).To(Equal(sluicev1beta1.StagePending))
			g.Expect(staging.Reason).To(Equal(promotion.ReasonInvalidGitTarget))
			g.Expect(staging.Message).To(And(ContainSubstring("401 Unauthorized"), ContainSubstring("push.secretRef")))
			prs, posts := host.count()
			g.Expect(prs).To(BeZero())
			g.Expect(posts).To(BeZero())

			// The right token: the pull request is opened from the branch
			// already written, with the provenance.
			token.Data["token"] = []byte(vendorToken)
			g.Expect(f.env.Client.Update(f.ctx, token)).To(Succeed())
			f.reconcile(f.r, t0.Add(time.Second))
			staging = stageOf(f.get(), "staging")
			g.Expect(staging.State).To(Equal(sluicev1beta1.StagePending))
			g.Expect(staging.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestOpen))
			g.Expect(staging.PullRequest).To(Equal(host.srv.URL + tc.page + "1"))
			g.Expect(f.head()).To(Equal(mainBefore), "main changes only by the merge")
			pr := host.pr(1)
			g.Expect(pr.head).To(Equal("sluice/staging-" + staging.Bundle))
			g.Expect(pr.base).To(Equal("main"))
			g.Expect(pr.title).To(ContainSubstring("staging"))
			g.Expect(pr.body).To(And(ContainSubstring(digest), ContainSubstring("Sluice-Bundle: "+staging.Bundle)))

			// Decided again, by a restarted reconciler too: the same one.
			f.reconcile(f.r, t0.Add(2*time.Second))
			f.reconcile(f.reconciler(f.r.Recorder), t0.Add(3*time.Second))
			g.Expect(stageOf(f.get(), "staging").PullRequest).To(Equal(staging.PullRequest))
			prs, posts = host.count()
			g.Expect(prs).To(Equal(1), "one pull request")
			g.Expect(posts).To(Equal(1), "one POST: the open one is found first")

			// Merged: the merge commit is the stage's commit.
			merged := host.merge(f, 1)
			f.reconcile(f.r, t0.Add(4*time.Second))
			staging = stageOf(f.get(), "staging")
			g.Expect(staging.State).To(Equal(sluicev1beta1.StageCommitted))
			g.Expect(staging.Commit).To(Equal(merged))
			g.Expect(staging.PullRequest).To(BeEmpty())
			g.Expect(f.git("show", "main:deploy/staging/kustomization.yaml")).To(ContainSubstring("digest: " + digest))

			// Verified; a newer tag goes to a second pull request, closed
			// unmerged: the bundle fails there.
			f.release("web-staging", staging.Commit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(5*time.Second))
			f.push("1.2.0")
			f.reconcile(f.r, t0.Add(time.Minute))
			second := stageOf(f.get(), "staging")
			g.Expect(second.PullRequest).To(Equal(host.srv.URL + tc.page + "2"))
			host.close(2)
			f.reconcile(f.r, t0.Add(time.Minute+time.Second))
			second = stageOf(f.get(), "staging")
			g.Expect(second.State).To(Equal(sluicev1beta1.StageFailed))
			g.Expect(second.Reason).To(Equal(sluicev1beta1.PipelineReasonPullRequestClosed))
			// (production took the verified bundle directly: main moved,
			// but staging's overlay did not.)
			g.Expect(f.git("show", "main:deploy/staging/kustomization.yaml")).To(ContainSubstring("digest: " + digest))

			for _, secret := range []string{vendorToken, gitPassword} {
				g.Expect(f.logs.String()).NotTo(ContainSubstring(secret))
				g.Expect(fmt.Sprint(f.get().Status)).NotTo(ContainSubstring(secret))
			}
		})
	}
}

// A token Secret without the key token is refused before anything is
// written, with a message that says what to add.
func TestReconciler_PullRequestSecretWithoutToken(t *testing.T) {
	f := newFixture(t)
	g := f.g
	host := newVendorHost(t, f, sluicev1beta1.GitProviderGitHub)
	g.Expect(f.env.Client.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "api-token"},
		Data: map[string][]byte{"password": []byte(vendorToken)}})).To(Succeed())
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[0].Git = sluicev1beta1.PipelineGit{
			URL: host.repoURL(), Branch: "main", SecretRef: &corev1.LocalObjectReference{Name: "git"}, Path: "deploy/staging",
			Push: &sluicev1beta1.PipelinePush{Strategy: sluicev1beta1.PushPullRequest, Provider: sluicev1beta1.GitProviderGitHub,
				SecretRef: &corev1.LocalObjectReference{Name: "api-token"}},
		}
	})
	f.push("1.1.0")
	f.reconcile(f.r, time.Now().UTC())
	staging := stageOf(f.get(), "staging")
	g.Expect(staging.State).To(Equal(sluicev1beta1.StagePending))
	g.Expect(staging.Reason).To(Equal(promotion.ReasonInvalidGitTarget))
	g.Expect(staging.Message).To(Equal(fmt.Sprintf(`secret %s/api-token has no key "token" (the github access token)`, f.ns)))
	g.Expect(f.git("branch", "--list", "sluice/*")).To(BeEmpty(), "no branch is written")
	prs, posts := host.count()
	g.Expect(prs + posts).To(BeZero())
	g.Expect(f.logs.String()).NotTo(ContainSubstring(vendorToken))
}
