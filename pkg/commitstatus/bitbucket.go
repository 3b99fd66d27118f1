package commitstatus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
)

// Bitbucket's limits: a build key of 40 characters (Cloud) and a
// description of 255.
const (
	bitbucketKey         = 40
	bitbucketDescription = 255
)

// bitbucket posts to Bitbucket Cloud's
// POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build
// (developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses),
// with basic authentication by username and app password.
type bitbucket struct {
	c                *client
	base             string
	workspace, slug  string
	username, secret string
}

func newBitbucket(c *client, cfg Config, repo Repository) (Provider, error) {
	base, err := baseURL(cfg.Address, "https://api.bitbucket.org")
	if err != nil {
		return nil, err
	}
	ws, slug, err := owner2(repo, "Bitbucket")
	if err != nil {
		return nil, err
	}
	if cfg.Username == "" {
		return nil, errUsername
	}
	return &bitbucket{c: c, base: base, workspace: ws, slug: slug, username: cfg.Username, secret: cfg.Token}, nil
}

// bitbucketState maps a state to Bitbucket's (Cloud and Server).
func bitbucketState(s State) string {
	switch s {
	case Pending:
		return "INPROGRESS"
	case Success:
		return "SUCCESSFUL"
	}
	return "FAILED"
}

// bitbucketKeyOf is the context when it fits the key, otherwise the start
// of its SHA-256: the same context always gets the same key, so a later
// status replaces the earlier one.
func bitbucketKeyOf(context string) string {
	if len(context) <= bitbucketKey {
		return context
	}
	sum := sha256.Sum256([]byte(context))
	return hex.EncodeToString(sum[:])[:bitbucketKey]
}

// Set implements Provider. Bitbucket requires a url; without a target
// URL the status links to the repository.
func (b *bitbucket) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	link := s.TargetURL
	if link == "" {
		link = "https://bitbucket.org/" + url.PathEscape(b.workspace) + "/" + url.PathEscape(b.slug)
	}
	body := map[string]string{
		"state":       bitbucketState(s.State),
		"key":         bitbucketKeyOf(s.Context),
		"name":        s.Context,
		"url":         link,
		"description": truncate(s.Description, bitbucketDescription),
	}
	h := http.Header{}
	h.Set("Authorization", basicAuth(b.username, b.secret))
	h.Set("Accept", "application/json")
	return b.c.post(ctx, s, request{
		url: b.base + "/2.0/repositories/" + url.PathEscape(b.workspace) + "/" + url.PathEscape(b.slug) +
			"/commit/" + s.SHA + "/statuses/build",
		header: h, body: body,
	})
}
