package commitstatus

import (
	"context"
	"net/http"
	"strings"
)

// bitbucketServerKey is the longest build key Bitbucket Server keeps.
const bitbucketServerKey = 255

// bitbucketServer posts to Bitbucket Server's (Data Center's)
// POST /rest/build-status/1.0/commits/{commitId} ("Updating build status
// for commits"), with a bearer (HTTP access) token.
type bitbucketServer struct {
	c     *client
	base  string
	repo  Repository
	token string
}

func newBitbucketServer(c *client, cfg Config, repo Repository) (Provider, error) {
	def := repo.Web
	base, err := baseURL(cfg.Address, def)
	if err != nil {
		return nil, err
	}
	return &bitbucketServer{c: c, base: base, repo: repo, token: cfg.Token}, nil
}

// Set implements Provider. The url is required: without a target URL the
// status links to the commit.
func (b *bitbucketServer) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	link := s.TargetURL
	if link == "" {
		link = b.base
		if p := strings.Split(b.repo.Path, "/"); len(p) == 2 {
			link += "/projects/" + p[0] + "/repos/" + p[1] + "/commits/" + s.SHA
		}
	}
	key := s.Context
	if len(key) > bitbucketServerKey {
		key = bitbucketKeyOf(key)
	}
	body := map[string]string{
		"state":       bitbucketState(s.State),
		"key":         key,
		"name":        s.Context,
		"url":         link,
		"description": truncate(s.Description, bitbucketDescription),
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+b.token)
	h.Set("Accept", "application/json")
	return b.c.post(ctx, s, request{url: b.base + "/rest/build-status/1.0/commits/" + s.SHA, header: h, body: body})
}
