package commitstatus

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// gitlabDescription is the longest description GitLab keeps.
const gitlabDescription = 255

// gitLab posts to POST /api/v4/projects/{id}/statuses/{sha}
// (docs.gitlab.com/api/commits, "Set the pipeline status of a commit"),
// the project given by its URL-encoded path.
type gitLab struct {
	c       *client
	base    string
	project string
	token   string
}

func newGitLab(c *client, cfg Config, repo Repository) (Provider, error) {
	def := "https://gitlab.com"
	if repo.Web != "" {
		def = repo.Web
	}
	base, err := baseURL(cfg.Address, def)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(repo.Path, "/") {
		return nil, errRepository("GitLab", "group/project", repo)
	}
	return &gitLab{c: c, base: base, project: repo.Path, token: cfg.Token}, nil
}

// gitlabState maps a state: GitLab shows a status being worked on as
// running, and knows no error state.
func gitlabState(s State) string {
	switch s {
	case Pending:
		return "running"
	case Success:
		return "success"
	}
	return "failed"
}

// Set implements Provider. GitLab refuses a status that is already set
// (400 "Cannot transition status via :run from :running"): that is the
// state asked for, so it counts as set.
func (g *gitLab) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	body := map[string]string{
		"state":       gitlabState(s.State),
		"name":        s.Context,
		"description": truncate(s.Description, gitlabDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	h := http.Header{}
	h.Set("PRIVATE-TOKEN", g.token)
	return g.c.post(ctx, s, request{
		url:    g.base + "/api/v4/projects/" + url.PathEscape(g.project) + "/statuses/" + s.SHA,
		header: h, body: body,
		accept: func(code int, reason string) bool {
			return code == http.StatusBadRequest && strings.Contains(reason, "Cannot transition status")
		},
	})
}
