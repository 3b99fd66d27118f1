package commitstatus

import (
	"context"
	"net/http"
	"net/url"
)

// giteaDescription is the longest description Gitea keeps.
const giteaDescription = 255

// gitea posts to POST /api/v1/repos/{owner}/{repo}/statuses/{sha} with a
// CreateStatusOption body (Gitea's and Forgejo's swagger API), token
// authentication ("Authorization: token ...").
type gitea struct {
	c           *client
	base        string
	owner, repo string
	token       string
}

func newGitea(c *client, cfg Config, repo Repository) (Provider, error) {
	def := repo.Web
	base, err := baseURL(cfg.Address, def)
	if err != nil {
		return nil, err
	}
	owner, name, err := owner2(repo, "Gitea")
	if err != nil {
		return nil, err
	}
	return &gitea{c: c, base: base, owner: owner, repo: name, token: cfg.Token}, nil
}

// Set implements Provider. Gitea's states (pending, success, error,
// failure) are ours.
func (g *gitea) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	body := map[string]string{
		"state":       string(s.State),
		"context":     s.Context,
		"description": truncate(s.Description, giteaDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	h := http.Header{}
	h.Set("Authorization", "token "+g.token)
	h.Set("Accept", "application/json")
	return g.c.post(ctx, s, request{
		url:    g.base + "/api/v1/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/statuses/" + s.SHA,
		header: h, body: body,
	})
}
