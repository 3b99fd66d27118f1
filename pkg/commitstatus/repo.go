package commitstatus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Repository is where a Git URL points: its host and the repository path
// on that host, without ".git" (owner/repo, group/subgroup/project, or
// org/project/repo for Azure DevOps).
type Repository struct {
	// Host is the host name, without user or port.
	Host string
	// Path identifies the repository on the host.
	Path string
	// Web is the scheme, host and port of an http(s) URL (the port of an
	// SSH URL is SSH's): the default API base of self-hosted hosts.
	Web string
}

// scpLike matches git@host:owner/repo.git, which has no scheme.
var scpLike = regexp.MustCompile(`^(?:[^@/]+@)?([^:/]+):(.+)$`)

// ParseRepository reads the host and the repository path from a Git URL:
// https:// or http://, ssh://, scp-like git@host:owner/repo.git, and Azure
// DevOps' https://dev.azure.com/{org}/{project}/_git/{repo} and
// git@ssh.dev.azure.com:v3/{org}/{project}/{repo}.
func ParseRepository(raw string) (Repository, error) {
	var host, path, web string
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		switch u.Scheme {
		case "https", "http":
			web = u.Scheme + "://" + u.Host
		case "ssh":
		default:
			return Repository{}, fmt.Errorf("the repository URL has the unsupported scheme %q", u.Scheme)
		}
		host, path = u.Hostname(), u.Path
	} else if m := scpLike.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		host, path = m[1], m[2]
	} else {
		// Never quote the URL: it may carry credentials.
		return Repository{}, fmt.Errorf("the repository URL is not an https://, ssh:// or git@host:path URL")
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 4 && parts[2] == "_git":
		// dev.azure.com/{org}/{project}/_git/{repo}
		path = parts[0] + "/" + parts[1] + "/" + parts[3]
	case len(parts) == 3 && parts[1] == "_git" && strings.HasSuffix(host, ".visualstudio.com"):
		// {org}.visualstudio.com/{project}/_git/{repo}
		path = strings.TrimSuffix(host, ".visualstudio.com") + "/" + parts[0] + "/" + parts[2]
	case len(parts) == 4 && parts[0] == "v3":
		// ssh.dev.azure.com:v3/{org}/{project}/{repo}
		path = strings.Join(parts[1:], "/")
	case len(parts) >= 3 && parts[0] == "scm":
		// Bitbucket Server's clone URLs: /scm/{project}/{repo}.git
		path = strings.Join(parts[1:], "/")
	}
	if path == "" || host == "" {
		return Repository{}, fmt.Errorf("the repository URL names no repository")
	}
	if web == "" {
		web = "https://" + host
	}
	return Repository{Host: host, Path: path, Web: web}, nil
}

// baseURL is the API base of a host: addr when set, otherwise def. The
// token goes in clear over http://, so that is allowed on loopback only.
func baseURL(addr, def string) (string, error) {
	if addr == "" {
		addr = def
	}
	if addr == "" {
		return "", errors.New("the API address of the Git host is unknown: set spec.commitStatus.address")
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("the commit status address must be an https:// URL (http:// on loopback only)")
	}
	if u.User != nil {
		return "", errors.New("the commit status address must not carry credentials: put them in the Secret")
	}
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", errors.New("the commit status address must be an https:// URL: http:// would send the token in clear text (allowed on loopback only)")
		}
	}
	return strings.TrimSuffix(addr, "/"), nil
}
