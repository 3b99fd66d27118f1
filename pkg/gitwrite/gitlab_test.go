package gitwrite_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// gitlabHeaders are the headers every documented call carries: the token
// in PRIVATE-TOKEN, never in Authorization.
var gitlabHeaders = map[string]string{"PRIVATE-TOKEN": apiToken, "Accept": "application/json"}

// gitlabProject is the project's path, URL-encoded as one segment.
const gitlabProject = "/api/v4/projects/platform%2Fteam%2Fdeploy/merge_requests"

// gitlabMR is a merge request as GitLab documents it (abridged). shas are
// JSON values: a quoted SHA or null.
func gitlabMR(base, iid, state, sha, mergeSHA, squashSHA string) string {
	return `{"id":155016530,"iid":` + iid + `,"project_id":15513260,"title":"Promote web 1.1.0 to production","description":"Verified in staging.",` +
		`"state":"` + state + `","created_at":"2026-12-07T05:00:00.000Z","updated_at":"2026-12-07T05:01:00.000Z","merged_by":null,"merge_user":null,` +
		`"merged_at":null,"closed_by":null,"closed_at":null,"target_branch":"main","source_branch":"sluice/production-b1","user_notes_count":0,` +
		`"author":{"id":1,"username":"sluice-bot","name":"Sluice","state":"active"},"source_project_id":15513260,"target_project_id":15513260,` +
		`"draft":false,"merge_when_pipeline_succeeds":false,"merge_status":"can_be_merged","detailed_merge_status":"mergeable",` +
		`"sha":` + sha + `,"merge_commit_sha":` + mergeSHA + `,"squash_commit_sha":` + squashSHA + `,"squash":false,` +
		`"web_url":"` + base + `/platform/team/deploy/-/merge_requests/` + iid + `"}`
}

const (
	headSHA   = `"6dcb09b5b57875f334f61aebed695e2e4193db5e"`
	squashSHA = "c1d2c3d4e5f60718293a4b5c6d7e8f9012345678"
)

func newGitLab(t *testing.T) (*gitwrite.GitLab, *scriptedHost) {
	t.Helper()
	h := newScriptedHost(t)
	// A loopback host is a self-managed GitLab: its API is under /api/v4.
	gl, err := gitwrite.NewGitLab(h.srv.URL+"/platform/team/deploy.git", apiToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	gl.SetBackoff(10 * time.Millisecond)
	return gl, h
}

func TestNewGitLab_APIBase(t *testing.T) {
	for _, tc := range []struct {
		name, url, want, wantErr string
	}{
		{name: "gitlab.com", url: "https://gitlab.com/platform/deploy.git", want: "https://gitlab.com/api/v4"},
		{name: "gitlab.com over ssh", url: "git@gitlab.com:platform/team/deploy.git", want: "https://gitlab.com/api/v4"},
		{name: "self-managed", url: "https://git.example.com:8443/platform/deploy", want: "https://git.example.com:8443/api/v4"},
		{name: "plain http off loopback", url: "http://git.example.com/platform/deploy.git", wantErr: "clear text"},
		{name: "no group", url: "https://gitlab.com/deploy.git", wantErr: "group/project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			gl, err := gitwrite.NewGitLab(tc.url, apiToken, nil)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gl.APIBase()).To(Equal(tc.want))
		})
	}
	_, err := gitwrite.NewGitLab("https://gitlab.com/platform/deploy.git", "", nil)
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("token is needed")))
}

// Open finds the open merge request from the source branch, or opens one
// with the provenance in its title and description.
func TestGitLab_Open(t *testing.T) {
	g := NewWithT(t)
	gl, h := newGitLab(t)
	list := exchange{method: http.MethodGet, path: gitlabProject, query: "source_branch=sluice%2Fproduction-b1&state=opened&target_branch=main",
		header: gitlabHeaders, absent: []string{"Authorization", "Content-Type"}, code: http.StatusOK, answer: "[]"}
	found := list
	found.answer = "[" + gitlabMR(h.srv.URL, "4", "opened", headSHA, "null", "null") + "]"
	create := exchange{method: http.MethodPost, path: gitlabProject,
		header: map[string]string{"PRIVATE-TOKEN": apiToken, "Content-Type": "application/json"}, absent: []string{"Authorization"},
		body: map[string]any{"source_branch": prOptions.Head, "target_branch": "main", "title": prOptions.Title, "description": prOptions.Body},
		code: http.StatusCreated, answer: gitlabMR(h.srv.URL, "5", "opened", headSHA, "null", "null")}
	ctx := context.Background()

	// After a restart: the open one, no POST.
	h.script = []exchange{found}
	mr, err := gl.Open(ctx, prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mr).To(Equal(gitwrite.PullRequest{Number: 4, URL: h.srv.URL + "/platform/team/deploy/-/merge_requests/4", Open: true}))
	g.Expect(h.left()).To(BeZero())

	// None open: one is opened.
	h.script = []exchange{list, create}
	mr, err = gl.Open(ctx, prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mr).To(Equal(gitwrite.PullRequest{Number: 5, URL: h.srv.URL + "/platform/team/deploy/-/merge_requests/5", Open: true}))
	g.Expect(h.left()).To(BeZero())

	// 409: opened meanwhile; that one is found.
	conflict := create
	conflict.code, conflict.answer = http.StatusConflict, `{"message":["Another open merge request already exists for this source branch: !4"]}`
	h.script = []exchange{list, conflict, found}
	mr, err = gl.Open(ctx, prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mr.Number).To(Equal(int64(4)))
	g.Expect(h.left()).To(BeZero())

	// A refusal carries GitLab's reason, even as a list or a map.
	refused := create
	refused.code, refused.answer = http.StatusUnprocessableEntity, `{"message":{"target_branch":["is invalid"]}}`
	h.script = []exchange{list, refused}
	_, err = gl.Open(ctx, prOptions)
	g.Expect(err).To(MatchError(ContainSubstring(`failed to open a merge request from sluice/production-b1 to main: the Git host answered 422 Unprocessable Entity: {"target_branch":["is invalid"]}`)))
	g.Expect(commitstatus.IsPermanent(err)).To(BeTrue())
	g.Expect(h.left()).To(BeZero())
}

// Get reads open (also "locked", while GitLab merges), merged (merge,
// squash or fast-forward) and closed merge requests.
func TestGitLab_Get(t *testing.T) {
	g := NewWithT(t)
	gl, h := newGitLab(t)
	get := func(answer string, code int) exchange {
		return exchange{method: http.MethodGet, path: gitlabProject + "/5", header: gitlabHeaders, code: code, answer: answer}
	}
	url := h.srv.URL + "/platform/team/deploy/-/merge_requests/5"
	for _, tc := range []struct {
		name   string
		answer string
		want   gitwrite.PullRequest
	}{
		{name: "opened", answer: gitlabMR(h.srv.URL, "5", "opened", headSHA, "null", "null"), want: gitwrite.PullRequest{Number: 5, URL: url, Open: true}},
		{name: "locked", answer: gitlabMR(h.srv.URL, "5", "locked", headSHA, "null", "null"), want: gitwrite.PullRequest{Number: 5, URL: url, Open: true}},
		{name: "merge commit", answer: gitlabMR(h.srv.URL, "5", "merged", headSHA, `"`+mergeSHA+`"`, "null"), want: gitwrite.PullRequest{Number: 5, URL: url, Merged: true, MergeSHA: mergeSHA}},
		{name: "squashed, fast-forward", answer: gitlabMR(h.srv.URL, "5", "merged", headSHA, "null", `"`+squashSHA+`"`), want: gitwrite.PullRequest{Number: 5, URL: url, Merged: true, MergeSHA: squashSHA}},
		{name: "fast-forward", answer: gitlabMR(h.srv.URL, "5", "merged", headSHA, "null", "null"), want: gitwrite.PullRequest{Number: 5, URL: url, Merged: true, MergeSHA: headSHA[1 : len(headSHA)-1]}},
		{name: "closed", answer: gitlabMR(h.srv.URL, "5", "closed", headSHA, "null", "null"), want: gitwrite.PullRequest{Number: 5, URL: url}},
	} {
		h.script = []exchange{get(tc.answer, http.StatusOK)}
		mr, err := gl.Get(context.Background(), 5)
		g.Expect(err).NotTo(HaveOccurred(), tc.name)
		g.Expect(mr).To(Equal(tc.want), tc.name)
		g.Expect(h.left()).To(BeZero(), tc.name)
	}
	h.script = []exchange{get(gitlabMR(h.srv.URL, "5", "closed", headSHA, "null", "null"), http.StatusOK)}
	mr, err := gl.Get(context.Background(), 5)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = mr.Outcome()
	g.Expect(err).To(MatchError(gitwrite.ErrPullRequestClosed))

	h.script = []exchange{get(`{"message":"404 Not found"}`, http.StatusNotFound)}
	_, err = gl.Get(context.Background(), 5)
	g.Expect(err).To(MatchError("failed to read merge request !5: the Git host answered 404 Not Found: 404 Not found"))
	g.Expect(h.left()).To(BeZero())
}

// A 401 is not retried and never quotes the token; 5xx and 429 are retried.
func TestGitLab_ErrorsAndRetries(t *testing.T) {
	g := NewWithT(t)
	gl, h := newGitLab(t)
	get := exchange{method: http.MethodGet, path: gitlabProject + "/5", header: gitlabHeaders}
	unauthorized, unavailable, limited, ok := get, get, get, get
	unauthorized.code, unauthorized.answer = http.StatusUnauthorized, `{"message":"401 Unauthorized","token":"`+apiToken+`"}`
	unavailable.code, unavailable.answer = http.StatusServiceUnavailable, `{"message":"503 Service Unavailable"}`
	limited.code, limited.answer = http.StatusTooManyRequests, `Retry later`
	limited.answerHeader = map[string]string{"Retry-After": "0"}
	ok.code, ok.answer = http.StatusOK, gitlabMR(h.srv.URL, "5", "opened", headSHA, "null", "null")

	h.script = []exchange{unauthorized}
	_, err := gl.Get(context.Background(), 5)
	g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized")))
	g.Expect(err.Error()).NotTo(ContainSubstring(apiToken))
	g.Expect(h.count()).To(Equal(1))

	// A body that is not JSON is quoted (bounded), without the token.
	echo := get
	echo.code, echo.answer = http.StatusForbidden, "<html>forbidden for PRIVATE-TOKEN "+apiToken+"</html>"
	h.script = []exchange{echo}
	_, err = gl.Get(context.Background(), 5)
	g.Expect(err).To(MatchError(ContainSubstring("403 Forbidden: <html>forbidden for PRIVATE-TOKEN [redacted]</html>")))

	h.script = []exchange{unavailable, limited, ok}
	mr, err := gl.Get(context.Background(), 5)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mr.Open).To(BeTrue())
	g.Expect(h.left()).To(BeZero())
}
