package gitwrite_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// githubHeaders are the headers every documented call carries.
var githubHeaders = map[string]string{
	"Authorization":        "Bearer " + apiToken,
	"Accept":               "application/vnd.github+json",
	"X-GitHub-Api-Version": "2022-11-28",
}

// githubPR is a pull request as GitHub documents it (abridged: the fields
// around the ones Sluice reads are kept so that decoding sees their shape).
func githubPR(base string, number, state string, merged bool, mergeSHA string) string {
	mergedAt := "null"
	if merged {
		mergedAt = `"2026-12-07T05:01:02Z"`
	}
	return `{"url":"` + base + `/api/v3/repos/platform/deploy/pulls/` + number + `","id":1296269,"node_id":"MDExOlB1bGxSZXF1ZXN0MQ==",` +
		`"html_url":"` + base + `/platform/deploy/pull/` + number + `","number":` + number + `,"state":"` + state + `","locked":false,` +
		`"title":"Promote web 1.1.0 to production","user":{"login":"sluice-bot","id":1},"body":"Verified in staging.",` +
		`"created_at":"2026-12-07T05:00:00Z","closed_at":null,"merged_at":` + mergedAt + `,"merge_commit_sha":"` + mergeSHA + `",` +
		`"head":{"label":"platform:sluice/production-b1","ref":"sluice/production-b1","sha":"6dcb09b5b57875f334f61aebed695e2e4193db5e"},` +
		`"base":{"label":"platform:main","ref":"main","sha":"7dcb09b5b57875f334f61aebed695e2e4193db5e"},` +
		`"draft":false` + githubMerged(merged) + `}`
}

// githubMerged adds the fields only the single pull request endpoint has.
func githubMerged(merged bool) string {
	if merged {
		return `,"merged":true,"mergeable":null,"merged_by":{"login":"ada"}`
	}
	return `,"merged":false,"mergeable":true`
}

const mergeSHA = "e5bd3914e2e596debea16f433f57875b5b90bcd6"

func newGitHub(t *testing.T, script ...exchange) (*gitwrite.GitHub, *scriptedHost) {
	t.Helper()
	h := newScriptedHost(t, script...)
	// A loopback host is a GitHub Enterprise Server: its API is under /api/v3.
	gh, err := gitwrite.NewGitHub(h.srv.URL+"/platform/deploy.git", apiToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	gh.SetBackoff(10 * time.Millisecond)
	return gh, h
}

var prOptions = gitwrite.PullRequestOptions{Head: "sluice/production-b1", Base: "main", Title: "Promote web 1.1.0 to production",
	Body: "Promote web 1.1.0 to production\n\nSluice-Bundle: b1\nSluice-Source-Stage: staging\nSluice-Verified-By: web-staging-1\n"}

func TestNewGitHub_APIBase(t *testing.T) {
	for _, tc := range []struct {
		name, url, want, wantErr string
		token                    string
	}{
		{name: "github.com over https", url: "https://github.com/platform/deploy.git", want: "https://api.github.com"},
		{name: "github.com over ssh", url: "git@github.com:platform/deploy.git", want: "https://api.github.com"},
		{name: "Enterprise Server", url: "https://ghe.example.com/platform/deploy", want: "https://ghe.example.com/api/v3"},
		{name: "Enterprise Server over ssh", url: "ssh://git@ghe.example.com:2222/platform/deploy.git", want: "https://ghe.example.com/api/v3"},
		{name: "Enterprise Server on a port", url: "https://ghe.example.com:8443/platform/deploy.git", want: "https://ghe.example.com:8443/api/v3"},
		{name: "plain http off loopback", url: "http://ghe.example.com/platform/deploy.git", wantErr: "clear text"},
		{name: "no owner", url: "https://github.com/deploy.git", wantErr: "owner/repo"},
		{name: "too deep", url: "https://github.com/a/b/c.git", wantErr: "owner/repo"},
		{name: "no token", url: "https://github.com/platform/deploy.git", token: "-", wantErr: "token is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			token := apiToken
			if tc.token == "-" {
				token = ""
			}
			gh, err := gitwrite.NewGitHub(tc.url, token, nil)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(gh.APIBase()).To(Equal(tc.want))
		})
	}
}

// Open finds the open pull request from the head branch (after a restart)
// and opens none.
func TestGitHub_OpenFindsTheOpenOne(t *testing.T) {
	g := NewWithT(t)
	h := newScriptedHost(t)
	h.script = []exchange{{
		method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls", query: "base=main&head=platform%3Asluice%2Fproduction-b1&state=open",
		header: githubHeaders, absent: []string{"Content-Type"},
		code: http.StatusOK, answer: "[" + githubPR(h.srv.URL, "7", "open", false, "") + "]",
	}}
	gh, err := gitwrite.NewGitHub(h.srv.URL+"/platform/deploy.git", apiToken, nil)
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := gh.Open(context.Background(), prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr).To(Equal(gitwrite.PullRequest{Number: 7, URL: h.srv.URL + "/platform/deploy/pull/7", Open: true}))
	g.Expect(h.left()).To(BeZero())
}

// Open opens one, with the provenance in its title and body.
func TestGitHub_OpenCreates(t *testing.T) {
	g := NewWithT(t)
	h := newScriptedHost(t)
	h.script = []exchange{
		{method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls", query: "base=main&head=platform%3Asluice%2Fproduction-b1&state=open",
			header: githubHeaders, code: http.StatusOK, answer: "[]"},
		{method: http.MethodPost, path: "/api/v3/repos/platform/deploy/pulls",
			header: map[string]string{"Authorization": "Bearer " + apiToken, "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"},
			body:   map[string]any{"title": prOptions.Title, "head": prOptions.Head, "base": "main", "body": prOptions.Body},
			code:   http.StatusCreated, answer: githubPR(h.srv.URL, "8", "open", false, "")},
	}
	gh, err := gitwrite.NewGitHub(h.srv.URL+"/platform/deploy.git", apiToken, nil)
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := gh.Open(context.Background(), prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr).To(Equal(gitwrite.PullRequest{Number: 8, URL: h.srv.URL + "/platform/deploy/pull/8", Open: true}))
	g.Expect(h.left()).To(BeZero())
}

// A 422 "A pull request already exists" (opened meanwhile, or by an attempt
// whose answer was lost) finds that one.
func TestGitHub_OpenAlreadyExists(t *testing.T) {
	g := NewWithT(t)
	h := newScriptedHost(t)
	list := exchange{method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls", query: "base=main&head=platform%3Asluice%2Fproduction-b1&state=open",
		header: githubHeaders, code: http.StatusOK, answer: "[]"}
	found := list
	found.answer = "[" + githubPR(h.srv.URL, "9", "open", false, "") + "]"
	h.script = []exchange{list,
		{method: http.MethodPost, path: "/api/v3/repos/platform/deploy/pulls", header: githubHeaders,
			body: map[string]any{"title": prOptions.Title, "head": prOptions.Head, "base": "main", "body": prOptions.Body},
			code: http.StatusUnprocessableEntity,
			answer: `{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for platform:sluice/production-b1."}],` +
				`"documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request","status":"422"}`},
		found,
	}
	gh, err := gitwrite.NewGitHub(h.srv.URL+"/platform/deploy.git", apiToken, nil)
	g.Expect(err).NotTo(HaveOccurred())
	pr, err := gh.Open(context.Background(), prOptions)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr.Number).To(Equal(int64(9)))
	g.Expect(h.left()).To(BeZero())

	// Another 422 is the host's refusal, with its reason, not retried.
	h.script = []exchange{list, {method: http.MethodPost, path: "/api/v3/repos/platform/deploy/pulls", header: githubHeaders,
		body: map[string]any{"title": prOptions.Title, "head": prOptions.Head, "base": "main", "body": prOptions.Body},
		code: http.StatusUnprocessableEntity,
		answer: `{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"No commits between main and sluice/production-b1"}],` +
			`"documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request","status":"422"}`}}
	_, err = gh.Open(context.Background(), prOptions)
	g.Expect(err).To(MatchError(ContainSubstring("422 Unprocessable Entity: Validation Failed: No commits between main and sluice/production-b1")))
	g.Expect(commitstatus.IsPermanent(err)).To(BeTrue())
	g.Expect(h.left()).To(BeZero())
}

// Get reads open, merged (with the merge commit) and closed unmerged pull
// requests; a missing one is a 404, not retried.
func TestGitHub_Get(t *testing.T) {
	g := NewWithT(t)
	h := newScriptedHost(t)
	get := func(number, answer string, code int) exchange {
		return exchange{method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls/" + number, header: githubHeaders, code: code, answer: answer}
	}
	h.script = []exchange{
		// Before the merge, merge_commit_sha is GitHub's test merge: not the stage's commit.
		get("7", githubPR(h.srv.URL, "7", "open", false, "0000000000000000000000000000000000000abc"), http.StatusOK),
		get("7", githubPR(h.srv.URL, "7", "closed", true, mergeSHA), http.StatusOK),
		get("8", githubPR(h.srv.URL, "8", "closed", false, "1111111111111111111111111111111111111abc"), http.StatusOK),
		get("99", `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/pulls/pulls#get-a-pull-request","status":"404"}`, http.StatusNotFound),
	}
	gh, err := gitwrite.NewGitHub(h.srv.URL+"/platform/deploy.git", apiToken, nil)
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	open, err := gh.Get(ctx, 7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(open).To(Equal(gitwrite.PullRequest{Number: 7, URL: h.srv.URL + "/platform/deploy/pull/7", Open: true}))
	done, err := open.Outcome()
	g.Expect(done).To(BeFalse())
	g.Expect(err).NotTo(HaveOccurred())

	merged, err := gh.Get(ctx, 7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(merged).To(Equal(gitwrite.PullRequest{Number: 7, URL: h.srv.URL + "/platform/deploy/pull/7", Merged: true, MergeSHA: mergeSHA}))
	done, err = merged.Outcome()
	g.Expect(done).To(BeTrue())
	g.Expect(err).NotTo(HaveOccurred())

	closed, err := gh.Get(ctx, 8)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(closed).To(Equal(gitwrite.PullRequest{Number: 8, URL: h.srv.URL + "/platform/deploy/pull/8"}))
	_, err = closed.Outcome()
	g.Expect(err).To(MatchError(gitwrite.ErrPullRequestClosed))

	_, err = gh.Get(ctx, 99)
	g.Expect(err).To(MatchError(ContainSubstring("failed to read pull request 99: the Git host answered 404 Not Found: Not Found")))
	g.Expect(h.left()).To(BeZero())
}

// A refused token is a 401, not retried, and the token is in no error even
// when the host echoes it.
func TestGitHub_TokenNeverInErrors(t *testing.T) {
	g := NewWithT(t)
	gh, h := newGitHub(t, exchange{
		method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls/7", header: githubHeaders,
		code: http.StatusUnauthorized, answer: `{"message":"Bad credentials: Bearer ` + apiToken + `","documentation_url":"https://docs.github.com/rest","status":"401"}`,
	})
	_, err := gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("401 Unauthorized: Bad credentials: Bearer [redacted]")))
	g.Expect(err.Error()).NotTo(ContainSubstring(apiToken))
	g.Expect(h.count()).To(Equal(1), "a 401 is not retried")

	// Unreachable: the transport error quotes the URL, which holds no token.
	h.srv.Close()
	_, err = gh.Open(context.Background(), prOptions)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring(apiToken))
}

// 5xx and 429 are retried, honouring Retry-After; a 3xx is not followed.
func TestGitHub_RetriesAndRedirects(t *testing.T) {
	g := NewWithT(t)
	get := exchange{method: http.MethodGet, path: "/api/v3/repos/platform/deploy/pulls/7", header: githubHeaders}
	unavailable, limited, ok := get, get, get
	unavailable.code, unavailable.answer = http.StatusBadGateway, `<html>502 Bad Gateway</html>`
	limited.code, limited.answer = http.StatusTooManyRequests, `{"message":"API rate limit exceeded for installation ID 42."}`
	limited.answerHeader = map[string]string{"Retry-After": "1"}
	gh, h := newGitHub(t, unavailable, limited)
	ok.code, ok.answer = http.StatusOK, githubPR(h.srv.URL, "7", "open", false, "")
	h.script = append(h.script, ok)
	start := time.Now()
	pr, err := gh.Get(context.Background(), 7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pr.Open).To(BeTrue())
	g.Expect(time.Since(start)).To(BeNumerically(">=", time.Second), "Retry-After: 1 was honoured")
	g.Expect(h.left()).To(BeZero())

	// A spent rate limit is a 403 with X-RateLimit-Remaining 0: a wait
	// until X-RateLimit-Reset, not a refused token.
	spent := get
	spent.code, spent.answer = http.StatusForbidden, `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`
	spent.answerHeader = map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000",
		"X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(2*time.Second).Unix(), 10)}
	h.script = []exchange{spent, ok}
	start = time.Now()
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically(">=", time.Second), "X-RateLimit-Reset was honoured")
	g.Expect(h.left()).To(BeZero())
	h.script = []exchange{spent, spent, spent, spent}
	h.script[3].answerHeader = map[string]string{"X-RateLimit-Remaining": "0"}
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("429 Too Many Requests: rate limited (403): API rate limit exceeded")))
	g.Expect(commitstatus.IsPermanent(err)).To(BeFalse())
	g.Expect(h.left()).To(BeZero())

	// A reset an hour away is not waited for in the call: the next
	// reconcile asks again.
	spent.answerHeader["X-RateLimit-Reset"] = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	h.script = []exchange{spent}
	start = time.Now()
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("rate limited")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(h.left()).To(BeZero())

	// A 403 without those headers is a refusal, at once.
	forbidden := get
	forbidden.code, forbidden.answer = http.StatusForbidden, `{"message":"Resource not accessible by personal access token","status":"403"}`
	h.script = []exchange{forbidden}
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("403 Forbidden: Resource not accessible by personal access token")))
	g.Expect(h.left()).To(BeZero())

	// Four attempts, then the last answer.
	h.script = []exchange{unavailable, unavailable, unavailable, unavailable}
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("502 Bad Gateway")))
	g.Expect(h.left()).To(BeZero())

	// A 2xx that is not the documented JSON is an error, not retried.
	garbled := ok
	garbled.answer = `<html>maintenance</html>`
	h.script = []exchange{garbled}
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("the answer of the Git host is not the documented JSON")))
	g.Expect(h.left()).To(BeZero())

	// A redirect would take the token elsewhere: it is an error.
	moved := get
	moved.code, moved.answerHeader = http.StatusMovedPermanently, map[string]string{"Location": "https://elsewhere.example.com/x"}
	h.script = []exchange{moved}
	_, err = gh.Get(context.Background(), 7)
	g.Expect(err).To(MatchError(ContainSubstring("301")))
	g.Expect(strings.Contains(err.Error(), apiToken)).To(BeFalse())
}
