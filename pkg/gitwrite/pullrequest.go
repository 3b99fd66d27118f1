package gitwrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

// ErrPullRequestClosed is returned when a pull request was closed without
// being merged: the promotion it carried was refused.
var ErrPullRequestClosed = errors.New("the pull request was closed without being merged")

// PullRequestOptions says what to open: the changes pushed to Head (see
// Request.From), to be merged into Base.
type PullRequestOptions struct {
	Head  string
	Base  string
	Title string
	Body  string
}

// PullRequest is a pull request as the host reports it.
type PullRequest struct {
	Number int64
	// URL is the page of the pull request, for people.
	URL string
	// Open is true until the pull request is merged or closed.
	Open bool
	// Merged is true once merged; MergeSHA is then the merge commit.
	Merged   bool
	MergeSHA string
}

// PullRequests opens and follows pull requests on a Git host.
type PullRequests interface {
	// Open opens a pull request, or returns the open one from the same
	// head to the same base (a retried promotion opens it once).
	Open(ctx context.Context, o PullRequestOptions) (PullRequest, error)
	// Get reads a pull request.
	Get(ctx context.Context, number int64) (PullRequest, error)
}

// maxAPIBody bounds the host's answers.
const maxAPIBody = 1 << 20

// Gitea opens pull requests on Gitea (or Forgejo) through its API
// (/api/v1/repos/{owner}/{repo}/pulls), with an access token of scope
// write:repository.
type Gitea struct {
	base, owner, repo, token string
	hc                       *http.Client
}

var _ PullRequests = (*Gitea)(nil)

// NewGitea returns a Gitea client for the repository of repoURL (its
// clone URL: the API is on the same host, under /api/v1). hc nil is a
// client with a 30s timeout that follows no redirect, so that the token
// stays on the host it was meant for.
func NewGitea(repoURL, token string, hc *http.Client) (*Gitea, error) {
	r, err := commitstatus.ParseRepository(repoURL)
	if err != nil {
		return nil, err
	}
	owner, name, ok := strings.Cut(r.Path, "/")
	if !ok || strings.Contains(name, "/") {
		return nil, fmt.Errorf("the repository URL is not of the form https://host/owner/repo.git (path %q)", r.Path)
	}
	if token == "" {
		return nil, errors.New("a Gitea access token is needed to open pull requests")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	// Gitea may live under a sub-path (ROOT_URL): the API is beside the
	// owner in the clone URL.
	web := r.Web
	if u, err := url.Parse(repoURL); err == nil && u.Host != "" {
		if i := strings.Index(u.Path, "/"+r.Path); i > 0 {
			web += u.Path[:i]
		}
	}
	return &Gitea{base: web + "/api/v1", owner: owner, repo: name, token: token, hc: hc}, nil
}

type giteaPull struct {
	Number   int64  `json:"number"`
	HTMLURL  string `json:"html_url"`
	State    string `json:"state"`
	Merged   bool   `json:"merged"`
	MergeSHA string `json:"merge_commit_sha"`
}

func (p giteaPull) pull() PullRequest {
	pr := PullRequest{Number: p.Number, URL: p.HTMLURL, Open: p.State == "open", Merged: p.Merged}
	if p.Merged {
		pr.MergeSHA = p.MergeSHA
	}
	return pr
}

// Open implements PullRequests.
func (g *Gitea) Open(ctx context.Context, o PullRequestOptions) (PullRequest, error) {
	if o.Head == "" || o.Base == "" || o.Title == "" {
		return PullRequest{}, errors.New("a pull request needs a head branch, a base branch and a title")
	}
	// The open one first: after a restart the pull request may exist.
	var p giteaPull
	path := fmt.Sprintf("/repos/%s/%s/pulls/%s/%s", url.PathEscape(g.owner), url.PathEscape(g.repo), url.PathEscape(o.Base), url.PathEscape(o.Head))
	code, err := g.do(ctx, http.MethodGet, path, nil, &p)
	switch {
	case err == nil && p.State == "open":
		return p.pull(), nil
	case err != nil && code != http.StatusNotFound:
		return PullRequest{}, fmt.Errorf("failed to look for the pull request from %s to %s: %w", o.Head, o.Base, err)
	}
	body := map[string]string{"head": o.Head, "base": o.Base, "title": o.Title, "body": o.Body}
	path = fmt.Sprintf("/repos/%s/%s/pulls", url.PathEscape(g.owner), url.PathEscape(g.repo))
	p = giteaPull{}
	if _, err := g.do(ctx, http.MethodPost, path, body, &p); err != nil {
		return PullRequest{}, fmt.Errorf("failed to open a pull request from %s to %s: %w", o.Head, o.Base, err)
	}
	logr.FromContextOrDiscard(ctx).Info("Opened a pull request", "number", p.Number, "url", p.HTMLURL)
	return p.pull(), nil
}

// Get implements PullRequests.
func (g *Gitea) Get(ctx context.Context, number int64) (PullRequest, error) {
	var p giteaPull
	path := fmt.Sprintf("/repos/%s/%s/pulls/%d", url.PathEscape(g.owner), url.PathEscape(g.repo), number)
	if _, err := g.do(ctx, http.MethodGet, path, nil, &p); err != nil {
		return PullRequest{}, fmt.Errorf("failed to read pull request %d: %w", number, err)
	}
	return p.pull(), nil
}

// do sends a request and decodes a 2xx answer into out. Errors carry the
// host's message, without the token.
func (g *Gitea) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "token "+g.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("failed to read the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &m)
		reason := strings.ReplaceAll(m.Message, g.token, "***")
		if len(reason) > 256 {
			reason = reason[:256] + "…"
		}
		return resp.StatusCode, &commitstatus.HTTPError{StatusCode: resp.StatusCode, Reason: reason}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("failed to decode the answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// WaitMerged polls a pull request every interval until it is merged
// (returned) or closed (ErrPullRequestClosed), or ctx ends. A controller
// that must not block calls Outcome on each reconcile instead.
func WaitMerged(ctx context.Context, prs PullRequests, number int64, interval time.Duration) (PullRequest, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pr, err := prs.Get(ctx, number)
		if err != nil {
			return pr, err
		}
		if done, err := pr.Outcome(); done {
			return pr, err
		}
		select {
		case <-ctx.Done():
			return pr, fmt.Errorf("pull request %d is still open: %w", number, ctx.Err())
		case <-t.C:
		}
	}
}

// Outcome tells whether the pull request is decided, and if it was
// refused (ErrPullRequestClosed).
func (p PullRequest) Outcome() (done bool, err error) {
	switch {
	case p.Merged:
		return true, nil
	case !p.Open:
		return true, fmt.Errorf("pull request %d (%s): %w", p.Number, p.URL, ErrPullRequestClosed)
	}
	return false, nil
}
