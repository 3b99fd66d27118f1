package gitsync_test

import (
	"testing"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// gitServer serves repositories with git's own http-backend on loopback.
type gitServer struct{ *testenv.GitServer }

// newGitServer starts a Git server; with user set, requests need HTTP basic
// auth with user and password.
func newGitServer(t *testing.T, user, password string) *gitServer {
	t.Helper()
	s, err := testenv.StartGitServer(t.TempDir(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &gitServer{s}
}

// repo is a working repository served by a gitServer.
type repo struct {
	t *testing.T
	*testenv.GitRepo
	dir string
}

// newRepo creates a repository with branch main.
func (s *gitServer) newRepo(t *testing.T, name string) *repo {
	t.Helper()
	r, err := s.NewRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, GitRepo: r, dir: r.Dir}
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	out, err := r.Git(args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// write writes files (path → content) and commits them; it returns the sha.
func (r *repo) write(msg string, files map[string]string) string {
	r.t.Helper()
	sha, err := r.Write(msg, files)
	if err != nil {
		r.t.Fatal(err)
	}
	return sha
}

// remove deletes files and commits.
func (r *repo) remove(msg string, paths ...string) string {
	r.t.Helper()
	sha, err := r.Remove(msg, paths...)
	if err != nil {
		r.t.Fatal(err)
	}
	return sha
}
