package commitstatus

import (
	"context"
	"net/http"
	"net/url"
)

// githubDescription is the longest description GitHub accepts.
const githubDescription = 140

// gitHub posts to POST /repos/{owner}/{repo}/statuses/{sha}
// (docs.github.com/rest/commits/statuses), also on GitHub Enterprise
// Server, whose API is under https://{host}/api/v3.
type gitHub struct {
	c           *client
	base        string
	owner, repo string
	token       string
}

func newGitHub(c *client, cfg Config, repo Repository) (Provider, error) {
	def := "https://api.github.com"
	if repo.Host != "" && repo.Host != "github.com" {
		def = repo.Web + "/api/v3"
	}
	base, err := baseURL(cfg.Address, def)
	if err != nil {
		return nil, err
	}
	owner, name, err := owner2(repo, "GitHub")
	if err != nil {
		return nil, err
	}
	return &gitHub{c: c, base: base, owner: owner, repo: name, token: cfg.Token}, nil
}

// Set implements Provider. GitHub's states are the same as ours.
func (g *gitHub) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	body := map[string]string{
		"state":       string(s.State),
		"context":     s.Context,
		"description": truncate(s.Description, githubDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+g.token)
	h.Set("Accept", "application/vnd.github+json")
	h.Set("X-GitHub-Api-Version", "2022-11-28")
	return g.c.post(ctx, s, request{
		url:    g.base + "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/statuses/" + s.SHA,
		header: h, body: body,
	})
}
