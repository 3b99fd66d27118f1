// Package commitstatus posts the outcome of a sync or a release to the
// commit that caused it, through the commit status API of the Git host:
// GitHub, GitLab, Gitea, Bitbucket Cloud, Bitbucket Server (Data Center)
// and Azure DevOps. One file per host builds that host's documented
// request; client.go sends it, with retries and bounded reads, and keeps
// the token out of logs and errors.
package commitstatus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
)

// State is the host-independent state of a commit status; each provider
// maps it to its own vocabulary.
type State string

// The states a caller posts.
const (
	// Pending: the revision is being applied or a release is analysing it.
	Pending State = "pending"
	// Success: applied and healthy, or promoted.
	Success State = "success"
	// Failure: the sync failed, or the release was rolled back.
	Failure State = "failure"
	// Error: something other than the revision's content went wrong.
	Error State = "error"
)

// Status is one commit status to set.
type Status struct {
	// SHA is the full commit hash.
	SHA string
	// State of the status.
	State State
	// Context names the status; a later status of the same context
	// replaces it (GitHub's context, GitLab's name, Bitbucket's key).
	Context string
	// Description is shown next to the status; providers cut it to their
	// host's limit.
	Description string
	// TargetURL links from the status; optional.
	TargetURL string
}

// Provider sets commit statuses on one repository of one host.
type Provider interface {
	// Set posts s. It retries 5xx and 429 answers with backoff; a 4xx
	// answer is returned at once (and logged once) as an *HTTPError.
	Set(ctx context.Context, s Status) error
}

// Types of providers, as in spec.commitStatus.provider.
const (
	GitHub          = "github"
	GitLab          = "gitlab"
	Gitea           = "gitea"
	Bitbucket       = "bitbucket"
	BitbucketServer = "bitbucketserver"
	AzureDevOps     = "azuredevops"
)

// ErrUnsupportedType is returned by New for an unknown provider type.
var ErrUnsupportedType = errors.New("unsupported commit status provider")

// Config describes the repository and the credentials of a Provider.
type Config struct {
	// Type is one of the provider types above.
	Type string
	// URL is the Git URL of the repository (https://, http://, ssh:// or
	// scp-like git@host:owner/repo.git): its host gives the default API
	// address and its path the repository.
	URL string
	// Address overrides the API base (self-hosted instances, tests); the
	// documented path of each host is appended to it.
	Address string
	// Repository overrides the repository taken from URL: owner/repo
	// (GitLab group/subgroup/project, Azure DevOps org/project/repo).
	Repository string
	// Token authenticates: a bearer token (GitHub, Bitbucket Server), a
	// personal or project access token (GitLab, Gitea, Azure DevOps), or
	// Bitbucket Cloud's app password.
	Token string
	// Username goes with the app password of Bitbucket Cloud.
	Username string

	// HTTPClient sends the requests; a client that follows no redirect
	// (a redirect would carry the token elsewhere) when nil.
	HTTPClient *http.Client
	// Logger logs a refused status once, and exhausted retries.
	Logger logr.Logger
	// MaxAttempts bounds the attempts of one Set (default 4).
	MaxAttempts int
	// Backoff is the first wait between attempts; it doubles (default 1s).
	Backoff time.Duration
	// MaxWait bounds one wait, also one asked for by Retry-After (default 30s).
	MaxWait time.Duration
}

// New returns the Provider of cfg.Type. An unknown type, a URL the
// repository cannot be read from, or a missing credential is an error.
func New(cfg Config) (Provider, error) {
	if cfg.Token == "" {
		return nil, errors.New("the commit status token is empty: set the key token in the Secret")
	}
	repo, err := ParseRepository(cfg.URL)
	if err != nil && cfg.Repository == "" {
		return nil, err
	}
	if cfg.Repository != "" {
		repo.Path = strings.Trim(cfg.Repository, "/")
	}
	c := newClient(cfg)
	switch cfg.Type {
	case GitHub:
		return newGitHub(c, cfg, repo)
	case GitLab:
		return newGitLab(c, cfg, repo)
	case Gitea:
		return newGitea(c, cfg, repo)
	case Bitbucket:
		return newBitbucket(c, cfg, repo)
	case BitbucketServer:
		return newBitbucketServer(c, cfg, repo)
	case AzureDevOps:
		return newAzureDevOps(c, cfg, repo)
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedType, cfg.Type)
}

// SHAFromRevision returns the commit of a GitSync revision,
// "<ref>@sha1:<sha>"; a bare hash is returned as is.
func SHAFromRevision(rev string) string {
	for _, algo := range []string{"@sha1:", "@sha256:"} {
		if i := strings.LastIndex(rev, algo); i >= 0 {
			return rev[i+len(algo):]
		}
	}
	if strings.HasPrefix(rev, "sha1:") {
		return strings.TrimPrefix(rev, "sha1:")
	}
	return rev
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut
// with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// owner2 splits an owner/repo path.
func owner2(repo Repository, host string) (string, string, error) {
	parts := strings.Split(repo.Path, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", errRepository(host, "owner/repo", repo)
	}
	return parts[0], parts[1], nil
}

func errRepository(host, want string, repo Repository) error {
	return fmt.Errorf("%s needs the repository as %s, got %q: set spec.commitStatus.repository", host, want, repo.Path)
}

func checkSHA(s Status) error {
	if s.SHA == "" {
		return errors.New("a commit status needs the commit SHA")
	}
	for _, r := range s.SHA {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return fmt.Errorf("the commit %q is not a hexadecimal SHA", s.SHA)
		}
	}
	return nil
}
