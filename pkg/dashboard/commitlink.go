package dashboard

import (
	"net/url"
	"regexp"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Commit links: the dashboard links a revision to its commit's page on the
// Git host when it knows how the host spells that page. It never guesses for
// an unknown host: a wrong link is worse than the SHA alone.

// shaPattern is a Git object name (SHA-1 or SHA-256), abbreviated or not.
var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// revisionSHA is the commit of a GitSync revision, "<ref>@sha1:<sha>" (or a
// bare SHA); "" when the revision names none.
func revisionSHA(rev string) string {
	if i := strings.LastIndex(rev, ":"); i >= 0 && strings.Contains(rev[:i], "@sha") {
		rev = rev[i+1:]
	}
	rev = strings.ToLower(rev)
	if shaPattern.MatchString(rev) {
		return rev
	}
	return ""
}

// repoLocation splits a Git URL (https://, http://, ssh:// or scp-like
// git@host:path) into the web scheme, host and repository path, without
// credentials or the .git suffix.
func repoLocation(raw string) (scheme, host, path string, ok bool) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		// scp-like: [user@]host:path
		at := strings.LastIndex(raw, "@")
		rest := raw[at+1:]
		h, p, found := strings.Cut(rest, ":")
		if !found || h == "" {
			return "", "", "", false
		}
		scheme, host, path = "https", h, p
	} else {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return "", "", "", false
		}
		switch u.Scheme {
		case "https", "http":
			scheme, host = u.Scheme, u.Host
		case "ssh", "git", "git+ssh":
			// The web pages are served over HTTPS on the default port.
			scheme, host = "https", u.Hostname()
		default:
			return "", "", "", false
		}
		path = u.Path
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if strings.Count(path, "/") < 1 || strings.ContainsAny(path, "?#") {
		return "", "", "", false
	}
	return scheme, strings.ToLower(host), path, true
}

// hostKind is the kind of Git host: from spec.commitStatus.provider when the
// GitSync posts commit statuses (which names self-hosted instances), else
// from the well-known host names.
func hostKind(host string, provider sluicev1beta1.CommitStatusProvider) string {
	switch p := string(provider); p {
	case "github", "gitlab", "gitea", "bitbucket":
		return p
	case "":
	default:
		return "" // Bitbucket Server and Azure DevOps: other URL shapes, not built here
	}
	name := host
	if i := strings.LastIndex(name, ":"); i >= 0 {
		name = name[:i]
	}
	switch {
	case name == "github.com":
		return "github"
	case name == "gitlab.com", strings.HasPrefix(name, "gitlab."):
		return "gitlab"
	case name == "codeberg.org", name == "gitea.com", strings.HasPrefix(name, "gitea."), strings.HasPrefix(name, "forgejo."):
		return "gitea"
	case name == "bitbucket.org":
		return "bitbucket"
	}
	return ""
}

// commitURL is the web page of commit sha in the repository at repoURL, or
// "" when the host is unknown or the SHA is not one.
func commitURL(repoURL string, provider sluicev1beta1.CommitStatusProvider, sha string) string {
	prefix := commitPrefix(repoURL, provider)
	if prefix == "" || !shaPattern.MatchString(sha) {
		return ""
	}
	return prefix + sha
}

// commitPrefix is the commit page of the repository without the SHA, so
// that the page links the revisions of Canaries from their GitSync's view;
// "" for an unknown host.
func commitPrefix(repoURL string, provider sluicev1beta1.CommitStatusProvider) string {
	scheme, host, path, ok := repoLocation(repoURL)
	if !ok {
		return ""
	}
	var page string
	switch hostKind(host, provider) {
	case "github", "gitea":
		page = path + "/commit/"
	case "gitlab":
		page = path + "/-/commit/"
	case "bitbucket":
		page = path + "/commits/"
	default:
		return ""
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: "/" + page}).String()
}

// gitSyncCommitPrefix is commitPrefix for a GitSync's repository.
func gitSyncCommitPrefix(gs *sluicev1beta1.GitSync) string {
	var provider sluicev1beta1.CommitStatusProvider
	if cs := gs.Spec.CommitStatus; cs != nil {
		provider = cs.Provider
	}
	return commitPrefix(gs.Spec.URL, provider)
}
