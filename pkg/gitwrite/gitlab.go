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

// gitlabTitle is the longest merge request title GitLab takes.
const gitlabTitle = 255

// GitLab opens merge requests on gitlab.com or a self-managed GitLab
// through the REST API v4 (docs.gitlab.com/api/merge_requests), the
// project given by its URL-encoded path, with a token of scope api.
type GitLab struct {
	api     *hostAPI
	project string
}

var _ PullRequests = (*GitLab)(nil)

// NewGitLab returns a GitLab client for the project of repoURL (its clone
// URL, groups and subgroups allowed). The API is on the same host,
// https://{host}/api/v4: an instance under a relative URL root is not
// told apart from a group. hc nil is a client with a 30s timeout that
// follows no redirect.
func NewGitLab(repoURL, token string, hc *http.Client) (*GitLab, error) {
	r, err := repoPath(repoURL)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(r.Path, "/") {
		return nil, fmt.Errorf("the repository URL is not of the form https://host/group/project.git (path %q)", r.Path)
	}
	if token == "" {
		return nil, errors.New("a GitLab access token is needed to open merge requests")
	}
	h := http.Header{}
	h.Set("PRIVATE-TOKEN", token)
	h.Set("Accept", "application/json")
	api, err := newHostAPI(r.Web+"/api/v4", token, h, hc)
	if err != nil {
		return nil, err
	}
	return &GitLab{api: api, project: r.Path}, nil
}

// gitlabMR is the part of GitLab's merge request object Sluice reads.
type gitlabMR struct {
	IID       int64  `json:"iid"`
	WebURL    string `json:"web_url"`
	State     string `json:"state"`
	SHA       string `json:"sha"`
	MergeSHA  string `json:"merge_commit_sha"`
	SquashSHA string `json:"squash_commit_sha"`
}

func (m gitlabMR) pull() PullRequest {
	// "locked" is the short state of a merge request being merged.
	pr := PullRequest{Number: m.IID, URL: m.WebURL, Open: m.State == "opened" || m.State == "locked", Merged: m.State == "merged"}
	if pr.Merged {
		// A merge commit; a squash commit when squashed on a fast-forward
		// project; otherwise fast-forwarded: the source's head is the
		// target's.
		switch {
		case m.MergeSHA != "":
			pr.MergeSHA = m.MergeSHA
		case m.SquashSHA != "":
			pr.MergeSHA = m.SquashSHA
		default:
			pr.MergeSHA = m.SHA
		}
	}
	return pr
}

func (g *GitLab) mergeRequests() string {
	return "/projects/" + url.PathEscape(g.project) + "/merge_requests"
}

// Open implements PullRequests.
func (g *GitLab) Open(ctx context.Context, o PullRequestOptions) (PullRequest, error) {
	if o.Head == "" || o.Base == "" || o.Title == "" {
		return PullRequest{}, errors.New("a merge request needs a source branch, a target branch and a title")
	}
	// The open one first: after a restart the merge request may exist.
	if pr, ok, err := g.find(ctx, o); err != nil || ok {
		return pr, err
	}
	var m gitlabMR
	body := map[string]string{"source_branch": o.Head, "target_branch": o.Base, "title": cut(o.Title, gitlabTitle), "description": cut(o.Body, githubBody)}
	if err := g.api.do(ctx, http.MethodPost, g.mergeRequests(), nil, body, &m); err != nil {
		// 409: opened meanwhile, or by an attempt whose answer was lost.
		if isHTTPStatus(err, http.StatusConflict) {
			if pr, ok, ferr := g.find(ctx, o); ferr == nil && ok {
				return pr, nil
			}
		}
		return PullRequest{}, fmt.Errorf("failed to open a merge request from %s to %s: %w", o.Head, o.Base, err)
	}
	logr.FromContextOrDiscard(ctx).Info("Opened a merge request", "number", m.IID, "url", m.WebURL)
	return m.pull(), nil
}

// find lists the open merge requests from the source branch into the
// target branch.
func (g *GitLab) find(ctx context.Context, o PullRequestOptions) (PullRequest, bool, error) {
	var open []gitlabMR
	q := url.Values{"state": {"opened"}, "source_branch": {o.Head}, "target_branch": {o.Base}}
	if err := g.api.do(ctx, http.MethodGet, g.mergeRequests(), q, nil, &open); err != nil {
		return PullRequest{}, false, fmt.Errorf("failed to look for the merge request from %s to %s: %w", o.Head, o.Base, err)
	}
	for _, m := range open {
		if m.State == "opened" {
			return m.pull(), true, nil
		}
	}
	return PullRequest{}, false, nil
}

// Get implements PullRequests; number is the merge request's IID.
func (g *GitLab) Get(ctx context.Context, number int64) (PullRequest, error) {
	var m gitlabMR
	if err := g.api.do(ctx, http.MethodGet, g.mergeRequests()+"/"+strconv.FormatInt(number, 10), nil, nil, &m); err != nil {
		return PullRequest{}, fmt.Errorf("failed to read merge request !%d: %w", number, err)
	}
	return m.pull(), nil
}
