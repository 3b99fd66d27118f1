package gitsync_test

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitServer serves the repositories under root with git's own http-backend.
type gitServer struct {
	root string
	srv  *httptest.Server
}

// newGitServer starts git http-backend on loopback; with user set, requests
// need HTTP basic auth with user and password.
func newGitServer(t *testing.T, user, password string) *gitServer {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend not found (it ships with Debian's git package: apt-get install git): %v", err)
	}
	root := t.TempDir()
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
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
	s := &gitServer{root: root, srv: httptest.NewServer(handler)}
	t.Cleanup(s.srv.Close)
	return s
}

// repo is a working repository served by a gitServer.
type repo struct {
	t   *testing.T
	dir string
	URL string
}

// newRepo creates a repository with branch main.
func (s *gitServer) newRepo(t *testing.T, name string) *repo {
	t.Helper()
	r := &repo{t: t, dir: filepath.Join(s.root, name), URL: s.srv.URL + "/" + name + "/.git"}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "test@sluice.dev")
	r.git("config", "user.name", "test")
	r.git("config", "commit.gpgsign", "false")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// write writes files (path → content) and commits them; it returns the sha.
func (r *repo) write(msg string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.commit(msg)
}

// remove deletes files and commits.
func (r *repo) remove(msg string, paths ...string) string {
	r.t.Helper()
	r.git(append([]string{"rm", "-q"}, paths...)...)
	return r.commit(msg)
}

func (r *repo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}
