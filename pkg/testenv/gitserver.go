package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GitBackend is git's own smart-HTTP server, shipped with Debian's git package.
const GitBackend = "/usr/lib/git-core/git-http-backend"

// GitServer serves the repositories under Root over smart HTTP with git's
// own http-backend, on 127.0.0.1.
type GitServer struct {
	Root string
	// URL is the server's base URL, e.g. http://127.0.0.1:34567.
	URL string
	srv *http.Server
	tmp bool
}

// StartGitServer starts a Git server on loopback serving repositories from
// root (a new temporary directory when empty). With user set, requests need
// HTTP basic auth with user and password.
func StartGitServer(root, user, password string) (*GitServer, error) {
	if _, err := os.Stat(GitBackend); err != nil {
		return nil, fmt.Errorf("git http-backend not found (it ships with Debian's git package: apt-get install git): %w", err)
	}
	tmp := false
	if root == "" {
		dir, err := os.MkdirTemp("", "sluice-git-")
		if err != nil {
			return nil, err
		}
		root, tmp = dir, true
	}
	h := &cgi.Handler{Path: GitBackend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	var handler http.Handler = h
	if user != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &GitServer{Root: root, URL: "http://" + l.Addr().String(), srv: &http.Server{Handler: handler}, tmp: tmp}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server (and removes its root when it made it).
func (s *GitServer) Close() {
	_ = s.srv.Close()
	if s.tmp {
		_ = os.RemoveAll(s.Root)
	}
}

// GitRepo is a working repository served by a GitServer; its commits are
// served as they are made.
type GitRepo struct {
	Dir string
	// URL is the clone URL.
	URL string
}

// NewRepo creates a repository with branch main.
func (s *GitServer) NewRepo(name string) (*GitRepo, error) {
	r := &GitRepo{Dir: filepath.Join(s.Root, name), URL: s.URL + "/" + name + "/.git"}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.email", "sluice@localhost"},
		{"config", "user.name", "sluice"},
		{"config", "commit.gpgsign", "false"},
	} {
		if _, err := r.Git(args...); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Git runs git in the repository and returns its trimmed output.
func (r *GitRepo) Git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Write writes files (path → content), commits them and returns the sha.
func (r *GitRepo) Write(msg string, files map[string]string) (string, error) {
	for p, c := range files {
		full := filepath.Join(r.Dir, p)
		if !strings.HasPrefix(full, r.Dir+string(filepath.Separator)) {
			return "", errors.New("path outside the repository: " + p)
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			return "", err
		}
	}
	return r.Commit(msg)
}

// Remove deletes files, commits and returns the sha.
func (r *GitRepo) Remove(msg string, paths ...string) (string, error) {
	if _, err := r.Git(append([]string{"rm", "-q"}, paths...)...); err != nil {
		return "", err
	}
	return r.Commit(msg)
}

// Commit commits everything in the work tree and returns the sha.
func (r *GitRepo) Commit(msg string) (string, error) {
	if _, err := r.Git("add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.Git("commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return "", err
	}
	return r.Git("rev-parse", "HEAD")
}
