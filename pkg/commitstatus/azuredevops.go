package commitstatus

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// azureDescription bounds the description posted to Azure DevOps.
const azureDescription = 255

// azureGenre groups Sluice's statuses in Azure DevOps: a status is named
// by its context {genre, name}.
const azureGenre = "sluice"

var errUsername = errors.New("bitbucket needs the key username (the Bitbucket user of the app password) in the Secret")

// azureDevOps posts to POST {org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses?api-version=7.1
// (learn.microsoft.com/rest/api/azure/devops/git/statuses/create), with a
// personal access token in basic authentication.
type azureDevOps struct {
	c                  *client
	base               string
	org, project, repo string
	token              string
}

func newAzureDevOps(c *client, cfg Config, repo Repository) (Provider, error) {
	base, err := baseURL(cfg.Address, "https://dev.azure.com")
	if err != nil {
		return nil, err
	}
	parts := strings.Split(repo.Path, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, errRepository("Azure DevOps", "org/project/repo", repo)
	}
	return &azureDevOps{c: c, base: base, org: parts[0], project: parts[1], repo: parts[2], token: cfg.Token}, nil
}

// azureState maps a state to Azure DevOps' GitStatusState.
func azureState(s State) string {
	switch s {
	case Pending:
		return "pending"
	case Success:
		return "succeeded"
	case Error:
		return "error"
	}
	return "failed"
}

// Set implements Provider.
func (a *azureDevOps) Set(ctx context.Context, s Status) error {
	if err := checkSHA(s); err != nil {
		return err
	}
	body := map[string]any{
		"state":       azureState(s.State),
		"description": truncate(s.Description, azureDescription),
		"context":     map[string]string{"name": s.Context, "genre": azureGenre},
	}
	if s.TargetURL != "" {
		body["targetUrl"] = s.TargetURL
	}
	h := http.Header{}
	h.Set("Authorization", basicAuth("", a.token))
	h.Set("Accept", "application/json")
	return a.c.post(ctx, s, request{
		url: a.base + "/" + url.PathEscape(a.org) + "/" + url.PathEscape(a.project) + "/_apis/git/repositories/" +
			url.PathEscape(a.repo) + "/commits/" + s.SHA + "/statuses?api-version=7.1",
		header: h, body: body,
	})
}

// basicAuth is the value of an Authorization header for basic authentication.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
