package gitwrite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// githubTitle is the longest pull request title GitHub takes.
const githubTitle = 256

// githubBody bounds the description: GitHub takes 65,536 characters.
const githubBody = 60000

// GitHub opens pull requests on github.com or GitHub Enterprise Server
// through the REST API (docs.github.com/rest/pulls/pulls, version
// 2022-11-28), with a fine-grained token that may read and write the
// repository's contents and pull requests.
type GitHub struct {
	api         *hostAPI
	owner, repo string
}

var _ PullRequests = (*GitHub)(nil)

// NewGitHub returns a GitHub client for the repository of repoURL (its
// clone URL). The API is https://api.github.com for github.com and
// https://{host}/api/v3 for GitHub Enterprise Server. hc nil is a client
// with a 30s timeout that follows no redirect.
func NewGitHub(repoURL, token string, hc *http.Client) (*GitHub, error) {
	r, err := repoPath(repoURL)
	if err != nil {
		return nil, err
	}
	owner, name, ok := strings.Cut(r.Path, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("the repository URL is not of the form https://host/owner/repo.git (path %q)", r.Path)
	}
	if token == "" {
		return nil, errors.New("a GitHub token is needed to open pull requests")
	}
	base := "https://api.github.com"
	if r.Host != "github.com" && r.Host != "www.github.com" {
		base = r.Web + "/api/v3"
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Accept", "application/vnd.github+json")
	h.Set("X-GitHub-Api-Version", "2022-11-28")
	api, err := newHostAPI(base, token, h, hc)
	if err != nil {
		return nil, err
	}
	return &GitHub{api: api, owner: owner, repo: name}, nil
}

// githubPull is the part of GitHub's pull request object Sluice reads. The
// list endpoint has merged_at but no merged.
type githubPull struct {
	Number   int64   `json:"number"`
	HTMLURL  string  `json:"html_url"`
	State    string  `json:"state"`
	Merged   bool    `json:"merged"`
	MergedAt *string `json:"merged_at"`
	MergeSHA string  `json:"merge_commit_sha"`
}

func (p githubPull) pull() PullRequest {
	pr := PullRequest{Number: p.Number, URL: p.HTMLURL, Open: p.State == "open", Merged: p.Merged || p.MergedAt != nil}
	// Before the merge, merge_commit_sha is a test merge, not on the base.
	if pr.Merged {
		pr.MergeSHA = p.MergeSHA
	}
	return pr
}

func (g *GitHub) pulls() string {
	return "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/pulls"
}

// Open implements PullRequests.
func (g *GitHub) Open(ctx context.Context, o PullRequestOptions) (PullRequest, error) {
	if o.Head == "" || o.Base == "" || o.Title == "" {
		return PullRequest{}, errors.New("a pull request needs a head branch, a base branch and a title")
	}
	// The open one first: after a restart the pull request may exist.
	if pr, ok, err := g.find(ctx, o); err != nil || ok {
		return pr, err
	}
	var p githubPull
	body := map[string]string{"title": cut(o.Title, githubTitle), "head": o.Head, "base": o.Base, "body": cut(o.Body, githubBody)}
	if err := g.api.do(ctx, http.MethodPost, g.pulls(), nil, body, &p); err != nil {
		// Opened meanwhile, or by an attempt whose answer was lost.
		if isHTTPStatus(err, http.StatusUnprocessableEntity) && strings.Contains(err.Error(), "already exists") {
			if pr, ok, ferr := g.find(ctx, o); ferr == nil && ok {
				return pr, nil
			}
		}
		return PullRequest{}, fmt.Errorf("failed to open a pull request from %s to %s: %w", o.Head, o.Base, err)
	}
	logr.FromContextOrDiscard(ctx).Info("Opened a pull request", "number", p.Number, "url", p.HTMLURL)
	return p.pull(), nil
}

// find lists the open pull requests from the head branch of this
// repository (head filter "owner:branch") into the base.
func (g *GitHub) find(ctx context.Context, o PullRequestOptions) (PullRequest, bool, error) {
	var open []githubPull
	q := url.Values{"state": {"open"}, "head": {g.owner + ":" + o.Head}, "base": {o.Base}}
	if err := g.api.do(ctx, http.MethodGet, g.pulls(), q, nil, &open); err != nil {
		return PullRequest{}, false, fmt.Errorf("failed to look for the pull request from %s to %s: %w", o.Head, o.Base, err)
	}
	for _, p := range open {
		if p.State == "open" {
			return p.pull(), true, nil
		}
	}
	return PullRequest{}, false, nil
}

// Get implements PullRequests.
func (g *GitHub) Get(ctx context.Context, number int64) (PullRequest, error) {
	var p githubPull
	if err := g.api.do(ctx, http.MethodGet, g.pulls()+"/"+strconv.FormatInt(number, 10), nil, nil, &p); err != nil {
		return PullRequest{}, fmt.Errorf("failed to read pull request %d: %w", number, err)
	}
	return p.pull(), nil
}
