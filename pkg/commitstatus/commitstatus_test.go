package commitstatus_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

const (
	sha   = "0123456789abcdef0123456789abcdef01234567"
	token = "s3cr3t-t0ken-value"
)

// recorded is one request an httptest host received.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]any
}

// host is a fake Git host: it records each request and answers with the
// next of its answers (then 201).
type host struct {
	mu       sync.Mutex
	requests []recorded
	answers  []func(w http.ResponseWriter)
	srv      *httptest.Server
}

func newHost(t *testing.T, answers ...func(w http.ResponseWriter)) *host {
	h := &host{answers: answers}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		h.mu.Lock()
		h.requests = append(h.requests, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		var answer func(w http.ResponseWriter)
		if len(h.answers) > 0 {
			answer, h.answers = h.answers[0], h.answers[1:]
		}
		h.mu.Unlock()
		if answer != nil {
			answer(w)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":1}`))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *host) got() []recorded {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recorded(nil), h.requests...)
}

func answer(code int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// logLines collects what a provider logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logLines) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, `"error"`) && !strings.Contains(s, "Retrying") {
			out = append(out, s)
		}
	}
	return out
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func basic(user, pass string) string {
	return "Basic " + b64(user+":"+pass)
}

func TestProvider_DocumentedRequests(t *testing.T) {
	long := strings.Repeat("d", 300)
	longContext := "sluice/prod-eu-west-1/gitsync/apps/platform-services"
	cases := []struct {
		name       string
		cfg        commitstatus.Config
		status     commitstatus.Status
		wantPath   string
		wantQuery  string
		wantHeader map[string]string
		wantBody   map[string]any
	}{{
		name:     "GitHub",
		cfg:      commitstatus.Config{Type: "github", URL: "https://github.com/acme/app.git"},
		status:   commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: "sluice/gitsync/apps/app", Description: long, TargetURL: "https://ci.example.com/1"},
		wantPath: "/repos/acme/app/statuses/" + sha,
		wantHeader: map[string]string{"Authorization": "Bearer " + token, "Accept": "application/vnd.github+json",
			"X-Github-Api-Version": "2022-11-28", "Content-Type": "application/json"},
		wantBody: map[string]any{"state": "pending", "context": "sluice/gitsync/apps/app",
			"description": strings.Repeat("d", 137) + "…", "target_url": "https://ci.example.com/1"},
	}, {
		name:       "GitLab nested group, pending is running",
		cfg:        commitstatus.Config{Type: "gitlab", URL: "ssh://git@gitlab.example.com:2222/platform/team/app.git"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: "sluice/gitsync/apps/app", Description: "Applying"},
		wantPath:   "/api/v4/projects/platform%2Fteam%2Fapp/statuses/" + sha,
		wantHeader: map[string]string{"Private-Token": token, "Content-Type": "application/json"},
		wantBody:   map[string]any{"state": "running", "name": "sluice/gitsync/apps/app", "description": "Applying"},
	}, {
		name:       "GitLab failure is failed",
		cfg:        commitstatus.Config{Type: "gitlab", URL: "git@gitlab.com:platform/app.git"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Failure, Context: "c", Description: long},
		wantPath:   "/api/v4/projects/platform%2Fapp/statuses/" + sha,
		wantHeader: map[string]string{"Private-Token": token},
		wantBody:   map[string]any{"state": "failed", "name": "c", "description": strings.Repeat("d", 252) + "…"},
	}, {
		name:       "Gitea",
		cfg:        commitstatus.Config{Type: "gitea", URL: "https://gitea.example.com/acme/app"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "sluice/gitsync/apps/app", Description: "Applied", TargetURL: "https://x/y"},
		wantPath:   "/api/v1/repos/acme/app/statuses/" + sha,
		wantHeader: map[string]string{"Authorization": "token " + token, "Content-Type": "application/json"},
		wantBody:   map[string]any{"state": "success", "context": "sluice/gitsync/apps/app", "description": "Applied", "target_url": "https://x/y"},
	}, {
		name:       "Bitbucket Cloud, long context hashed into the key",
		cfg:        commitstatus.Config{Type: "bitbucket", URL: "git@bitbucket.org:acme/app.git", Username: "deploy-bot"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: longContext, Description: "Applying"},
		wantPath:   "/2.0/repositories/acme/app/commit/" + sha + "/statuses/build",
		wantHeader: map[string]string{"Authorization": basic("deploy-bot", token), "Content-Type": "application/json"},
		wantBody: map[string]any{"state": "INPROGRESS", "key": sha256Hex(longContext)[:40], "name": longContext,
			"url": "https://bitbucket.org/acme/app", "description": "Applying"},
	}, {
		name:       "Bitbucket Cloud, short context is the key",
		cfg:        commitstatus.Config{Type: "bitbucket", URL: "https://bitbucket.org/acme/app.git", Username: "u"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Failure, Context: "sluice/app", Description: "rolled back", TargetURL: "https://t/1"},
		wantPath:   "/2.0/repositories/acme/app/commit/" + sha + "/statuses/build",
		wantHeader: map[string]string{"Authorization": basic("u", token)},
		wantBody:   map[string]any{"state": "FAILED", "key": "sluice/app", "name": "sluice/app", "url": "https://t/1", "description": "rolled back"},
	}, {
		name:       "Bitbucket Server",
		cfg:        commitstatus.Config{Type: "bitbucketserver", URL: "https://bitbucket.example.com/scm/PROJ/app.git"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "sluice/gitsync/apps/app", Description: "Applied"},
		wantPath:   "/rest/build-status/1.0/commits/" + sha,
		wantHeader: map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"},
		wantBody: map[string]any{"state": "SUCCESSFUL", "key": "sluice/gitsync/apps/app", "name": "sluice/gitsync/apps/app",
			"url": "{base}/projects/PROJ/repos/app/commits/" + sha, "description": "Applied"},
	}, {
		name:       "Azure DevOps",
		cfg:        commitstatus.Config{Type: "azuredevops", URL: "https://dev.azure.com/acme/web/_git/app"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "sluice/gitsync/apps/app", Description: "Applied", TargetURL: "https://t/2"},
		wantPath:   "/acme/web/_apis/git/repositories/app/commits/" + sha + "/statuses",
		wantQuery:  "api-version=7.1",
		wantHeader: map[string]string{"Authorization": basic("", token), "Content-Type": "application/json"},
		wantBody: map[string]any{"state": "succeeded", "description": "Applied", "targetUrl": "https://t/2",
			"context": map[string]any{"name": "sluice/gitsync/apps/app", "genre": "sluice"}},
	}, {
		name:       "Azure DevOps over SSH, failure is failed",
		cfg:        commitstatus.Config{Type: "azuredevops", URL: "git@ssh.dev.azure.com:v3/acme/web/app"},
		status:     commitstatus.Status{SHA: sha, State: commitstatus.Failure, Context: "c", Description: "x"},
		wantPath:   "/acme/web/_apis/git/repositories/app/commits/" + sha + "/statuses",
		wantQuery:  "api-version=7.1",
		wantHeader: map[string]string{"Authorization": basic("", token)},
		wantBody:   map[string]any{"state": "failed", "description": "x", "context": map[string]any{"name": "c", "genre": "sluice"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			h := newHost(t)
			cfg := tc.cfg
			cfg.Address, cfg.Token = h.srv.URL, token
			p, err := commitstatus.New(cfg)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Set(context.Background(), tc.status)).To(Succeed())
			reqs := h.got()
			g.Expect(reqs).To(HaveLen(1))
			r := reqs[0]
			g.Expect(r.Method).To(Equal(http.MethodPost))
			g.Expect(r.Path).To(Equal(tc.wantPath))
			g.Expect(r.Query).To(Equal(tc.wantQuery))
			for k, v := range tc.wantHeader {
				g.Expect(r.Header.Get(k)).To(Equal(v), k)
			}
			want := map[string]any{}
			for k, v := range tc.wantBody {
				if s, ok := v.(string); ok {
					v = strings.ReplaceAll(s, "{base}", h.srv.URL)
				}
				want[k] = v
			}
			g.Expect(r.Body).To(Equal(want))
		})
	}
}

func TestProvider_RetriesServerErrorsThenSucceeds(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(500, `{"message":"boom"}`), answer(502, "bad gateway"))
	var logs logLines
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL,
		Token: token, Backoff: 10 * time.Millisecond, Logger: logs.logger()})
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Expect(p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).To(Succeed())
	g.Expect(h.got()).To(HaveLen(3))
	// Exponential: 10ms, then 20ms.
	g.Expect(time.Since(start)).To(BeNumerically(">=", 30*time.Millisecond))
	g.Expect(logs.errors()).To(BeEmpty())
}

func TestProvider_HonoursRetryAfterOn429(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(429, `{"message":"API rate limit exceeded"}`, "Retry-After", "1"))
	p, err := commitstatus.New(commitstatus.Config{Type: "gitea", URL: "https://gitea.example.com/acme/app", Address: h.srv.URL,
		Token: token, Backoff: 10 * time.Millisecond, MaxWait: 5 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Expect(p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).To(Succeed())
	g.Expect(h.got()).To(HaveLen(2))
	g.Expect(time.Since(start)).To(BeNumerically(">=", time.Second))
}

func TestProvider_RetryAfterIsBounded(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(503, "", "Retry-After", "3600"))
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL,
		Token: token, Backoff: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Expect(p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).To(Succeed())
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
}

func TestProvider_GivesUpAfterMaxAttempts(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(500, "a"), answer(500, "b"), answer(500, "c"), answer(500, "d"), answer(500, "e"))
	var logs logLines
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL,
		Token: token, Backoff: time.Millisecond, MaxAttempts: 3, Logger: logs.logger()})
	g.Expect(err).NotTo(HaveOccurred())
	err = p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})
	g.Expect(err).To(MatchError(ContainSubstring("500")))
	g.Expect(commitstatus.IsPermanent(err)).To(BeFalse())
	g.Expect(h.got()).To(HaveLen(3))
	g.Expect(logs.errors()).To(HaveLen(1))
}

func TestProvider_401IsNotRetriedAndLoggedOnceWithoutTheToken(t *testing.T) {
	for _, typ := range []string{"github", "gitlab", "gitea", "bitbucket", "bitbucketserver", "azuredevops"} {
		t.Run(typ, func(t *testing.T) {
			g := NewWithT(t)
			// The host echoes the token, as a careless one might.
			h := newHost(t, answer(401, `{"message":"Bad credentials: `+token+`"}`))
			var logs logLines
			url := "https://host.example.com/acme/app.git"
			if typ == "azuredevops" {
				url = "https://dev.azure.com/acme/web/_git/app"
			}
			p, err := commitstatus.New(commitstatus.Config{Type: typ, URL: url, Address: h.srv.URL, Token: token,
				Username: "bot", Backoff: time.Millisecond, Logger: logs.logger()})
			g.Expect(err).NotTo(HaveOccurred())
			err = p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Failure, Context: "c", Description: "d"})
			g.Expect(err).To(HaveOccurred())
			g.Expect(commitstatus.IsPermanent(err)).To(BeTrue())
			g.Expect(err.Error()).To(ContainSubstring("401"))
			g.Expect(err.Error()).To(ContainSubstring("Bad credentials"))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
			g.Expect(h.got()).To(HaveLen(1))
			g.Expect(logs.errors()).To(HaveLen(1))
			g.Expect(logs.errors()[0]).To(ContainSubstring("Bad credentials"))
			g.Expect(logs.all()).NotTo(ContainSubstring(token))
			g.Expect(logs.all()).NotTo(ContainSubstring(b64("bot:" + token)))
		})
	}
}

func TestGitLab_SameStateRepostCountsAsSet(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(400, `{"message":"Cannot transition status via :run from :running"}`))
	var logs logLines
	p, err := commitstatus.New(commitstatus.Config{Type: "gitlab", URL: "https://gitlab.com/acme/app", Address: h.srv.URL, Token: token, Logger: logs.logger()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: "c"})).To(Succeed())
	g.Expect(h.got()).To(HaveLen(1))
	g.Expect(logs.errors()).To(BeEmpty())

	// Any other 400 is a refusal.
	h2 := newHost(t, answer(400, `{"message":{"state":["is invalid"]}}`))
	p, err = commitstatus.New(commitstatus.Config{Type: "gitlab", URL: "https://gitlab.com/acme/app", Address: h2.srv.URL, Token: token})
	g.Expect(err).NotTo(HaveOccurred())
	err = p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Pending, Context: "c"})
	g.Expect(err).To(MatchError(ContainSubstring("is invalid")))
}

func TestProvider_ReadsABoundedBody(t *testing.T) {
	g := NewWithT(t)
	huge := `{"message":"` + strings.Repeat("x", 1<<20) + `"}`
	h := newHost(t, answer(422, huge))
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL, Token: token})
	g.Expect(err).NotTo(HaveOccurred())
	err = p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})
	g.Expect(err).To(HaveOccurred())
	g.Expect(len(err.Error())).To(BeNumerically("<", 400))
}

func TestProvider_DoesNotFollowRedirects(t *testing.T) {
	g := NewWithT(t)
	other := newHost(t)
	h := newHost(t, answer(307, "", "Location", other.srv.URL+"/steal"))
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL, Token: token, MaxAttempts: 1})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Set(context.Background(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).NotTo(Succeed())
	g.Expect(other.got()).To(BeEmpty())
}

func TestProvider_CancelledContextStopsRetrying(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t, answer(500, ""), answer(500, ""), answer(500, ""))
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/acme/app", Address: h.srv.URL, Token: token, Backoff: time.Hour, MaxWait: time.Hour})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = p.Set(ctx, commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(h.got()).To(HaveLen(1))
}
