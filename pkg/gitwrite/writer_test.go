package gitwrite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

const (
	gitUser     = "promoter"
	gitPassword = "pa55-w0rd-never-shown"
)

// remote is a repository served by git's http-backend with basic auth,
// accepting pushes (the served work tree follows them).
type remote struct {
	t *testing.T
	*testenv.GitRepo
	creds *gitsync.Credentials
	srv   *testenv.GitServer
}

func newRemote(t *testing.T, files map[string]string) *remote {
	t.Helper()
	s, err := testenv.StartGitServer(t.TempDir(), gitUser, gitPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r, err := s.NewRepo("config")
	if err != nil {
		t.Fatal(err)
	}
	rm := &remote{t: t, GitRepo: r, creds: &gitsync.Credentials{Username: gitUser, Password: gitPassword}, srv: s}
	// http-backend refuses pushes without an authenticated REMOTE_USER
	// unless told; a non-bare repository updates its work tree on push.
	rm.git("config", "http.receivepack", "true")
	rm.git("config", "receive.denyCurrentBranch", "updateInstead")
	if _, err := r.Write("initial", files); err != nil {
		t.Fatal(err)
	}
	return rm
}

func (r *remote) git(args ...string) string {
	r.t.Helper()
	out, err := r.Git(args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *remote) head() string { return r.git("rev-parse", "main") }

func (r *remote) count() string { return r.git("rev-list", "--count", "main") }

func (r *remote) show(p string) string { return r.git("show", "main:"+p) }

func (r *remote) request(changes ...gitwrite.Change) gitwrite.Request {
	return gitwrite.Request{
		URL: r.URL, Branch: "main", Credentials: r.creds, Changes: changes,
		Message: gitwrite.Message{
			Subject: "Promote podinfo 6.1.0 to production",
			Body:    "Verified by the staging canary with live traffic.",
			Trailers: []gitwrite.Trailer{
				{Key: "Sluice-Bundle", Value: "podinfo@" + digest},
				{Key: "Sluice-Source-Stage", Value: "staging"},
				{Key: "Sluice-Verified-By", Value: "Canary staging/podinfo release 3"},
			},
		},
	}
}

func newWriter() *gitwrite.Writer {
	return &gitwrite.Writer{Identity: gitwrite.Identity{Name: "Sluice", Email: "sluice@example.com"}}
}

var promote = gitwrite.KustomizeImage{Dir: "overlays/production", Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.1.0", Digest: digest}

func TestWriter_CommitsOnceAndIsIdempotent(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization, "apps/deploy.yaml": deployment})
	w := newWriter()
	setter := gitwrite.Setter{Path: "apps", Name: "podinfo", Image: gitwrite.Image{Name: "ghcr.io/stefanprodan/podinfo", Tag: "6.1.0", Digest: digest}}
	req := r.request(promote, setter)
	before := r.head()

	res, err := w.Write(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changed).To(BeTrue())
	g.Expect(res.Attempts).To(Equal(1))
	g.Expect(res.SHA).To(Equal(r.head()))
	g.Expect(r.git("rev-parse", "main^")).To(Equal(before))
	g.Expect(r.show("overlays/production/kustomization.yaml")).To(ContainSubstring("newTag: 6.1.0 # set by promotion\n    digest: " + digest))
	g.Expect(r.show("apps/deploy.yaml")).To(ContainSubstring("image: ghcr.io/stefanprodan/podinfo:6.1.0@" + digest + ` # {"$promotion": "podinfo"}`))
	g.Expect(r.git("log", "-1", "--format=%an <%ae>|%cn <%ce>", "main")).To(Equal("Sluice <sluice@example.com>|Sluice <sluice@example.com>"))
	g.Expect(r.git("log", "-1", "--format=%B", "main")).To(Equal(strings.TrimSpace(req.Message.String())))
	g.Expect(r.git("log", "-1", "--format=%(trailers:key=Sluice-Source-Stage,valueonly)", "main")).To(Equal("staging"))
	g.Expect(r.git("log", "-1", "--format=%(trailers:key=Sluice-Bundle,valueonly)", "main")).To(Equal("podinfo@" + digest))

	// The same write again, as after a restart: nothing is committed.
	count := r.count()
	res2, err := w.Write(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res2).To(Equal(gitwrite.Result{Changed: false, SHA: res.SHA, Attempts: 1}))
	g.Expect(r.count()).To(Equal(count))
}

func TestWriter_RebasesOnConcurrentPush(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	w := newWriter()
	var theirs string
	w.SetBeforePush(func(attempt int) {
		if attempt == 1 {
			// Someone pushes between our clone and our push.
			sha, err := r.Write("someone else's change", map[string]string{"overlays/production/replicas.yaml": "replicas: 3\n"})
			if err != nil {
				t.Error(err)
			}
			theirs = sha
		}
	})
	res, err := w.Write(context.Background(), r.request(promote))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changed).To(BeTrue())
	g.Expect(res.Attempts).To(Equal(2))
	g.Expect(res.SHA).To(Equal(r.head()))
	// Rebased on their commit, which stays in history: no force push.
	g.Expect(r.git("rev-parse", "main^")).To(Equal(theirs))
	g.Expect(r.show("overlays/production/replicas.yaml")).To(Equal("replicas: 3"))
	g.Expect(r.show("overlays/production/kustomization.yaml")).To(ContainSubstring("newTag: 6.1.0"))
}

func TestWriter_GivesUpWhenTheBranchKeepsMoving(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	w := newWriter()
	w.MaxAttempts = 2
	w.SetBeforePush(func(attempt int) {
		if _, err := r.Write("busy", map[string]string{"busy.txt": time.Now().String()}); err != nil {
			t.Error(err)
		}
	})
	_, err := w.Write(context.Background(), r.request(promote))
	g.Expect(err).To(MatchError(gitwrite.ErrBranchMoving))
	g.Expect(r.show("overlays/production/kustomization.yaml")).To(ContainSubstring("newTag: 6.0.0"))
}

func TestWriter_SetterNotFoundCommitsNothing(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	head := r.head()
	missing := gitwrite.Setter{Path: "apps/missing", Name: "podinfo", Image: gitwrite.Image{Name: "x", Tag: "1"}}
	// The first change applies, the second finds nothing: nothing at all
	// is written.
	_, err := newWriter().Write(context.Background(), r.request(promote, missing))
	g.Expect(gitwrite.IsSetterNotFound(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("apps/missing"))
	g.Expect(r.head()).To(Equal(head))
}

func TestWriter_PushRejectedByHook(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	hook := filepath.Join(r.Dir, ".git", "hooks", "pre-receive")
	g.Expect(os.WriteFile(hook, []byte("#!/bin/sh\necho 'branch main is protected: open a pull request' >&2\nexit 1\n"), 0o755)).To(Succeed())
	head := r.head()
	var logs strings.Builder
	ctx := logr.NewContext(context.Background(), funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 5}))
	_, err := newWriter().Write(ctx, r.request(promote))
	t.Log(err)
	g.Expect(gitwrite.IsPushRejected(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("branch main is protected: open a pull request"))
	g.Expect(r.head()).To(Equal(head))
	g.Expect(err.Error() + logs.String()).NotTo(ContainSubstring(gitPassword))
	g.Expect(logs.String()).To(ContainSubstring("Pushing"))
}

func TestWriter_ReadOnlyRemote(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	r.git("config", "http.receivepack", "false")
	head := r.head()
	_, err := newWriter().Write(context.Background(), r.request(promote))
	t.Log(err)
	g.Expect(gitwrite.IsPushRejected(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("not push to branch main"))
	g.Expect(r.head()).To(Equal(head))
	g.Expect(err.Error()).NotTo(ContainSubstring(gitPassword))
}

// A remote gone between the clone and the push is a transient failure,
// not a refusal: the caller retries, and nothing was written.
func TestWriter_UnreachableIsNotARefusal(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	head := r.head()
	w := newWriter()
	w.SetBeforePush(func(int) { r.srv.Close() })
	_, err := w.Write(context.Background(), r.request(promote))
	g.Expect(err).To(MatchError(ContainSubstring("failed to push branch main")))
	g.Expect(gitwrite.IsPushRejected(err)).To(BeFalse(), "%v", err)
	g.Expect(r.head()).To(Equal(head))
}

func TestWriter_CredentialsNeverInErrors(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	for name, req := range map[string]gitwrite.Request{
		"wrong password": func() gitwrite.Request {
			q := r.request(promote)
			q.Credentials = &gitsync.Credentials{Username: gitUser, Password: "wrong-" + gitPassword}
			return q
		}(),
		"password in the URL": func() gitwrite.Request {
			q := r.request(promote)
			q.Credentials = nil
			q.URL = strings.Replace(r.URL, "http://", "http://"+gitUser+":wrong-"+gitPassword+"@", 1)
			return q
		}(),
		"unreachable, password in the URL": func() gitwrite.Request {
			q := r.request(promote)
			q.Credentials = nil
			q.URL = "http://" + gitUser + ":" + gitPassword + "@127.0.0.1:1/config/.git"
			return q
		}(),
		"bearer token": func() gitwrite.Request {
			q := r.request(promote)
			q.Credentials = &gitsync.Credentials{BearerToken: "wrong-" + gitPassword}
			return q
		}(),
	} {
		var logs strings.Builder
		ctx := logr.NewContext(context.Background(), funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 5}))
		_, err := newWriter().Write(ctx, req)
		g.Expect(err).To(HaveOccurred(), name)
		g.Expect(err.Error()).NotTo(ContainSubstring(gitPassword), name)
		g.Expect(logs.String()).NotTo(ContainSubstring(gitPassword), name)
	}
}

func TestWriter_RefusesBadRequests(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	head := r.head()
	for _, tc := range []struct {
		name string
		edit func(*gitwrite.Request, *gitwrite.Writer)
		want string
	}{
		{"no change", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Changes = nil }, "no change to write"},
		{"no branch", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Branch = "" }, "branch is empty"},
		{"bad branch", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Branch = "a..b" }, "not a valid branch name"},
		{"missing branch", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Branch = "production" }, "failed to clone branch production"},
		{"no identity", func(_ *gitwrite.Request, w *gitwrite.Writer) { w.Identity.Email = "" }, "identity needs a name and an email"},
		{"empty subject", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Message.Subject = " " }, "subject is empty"},
		{"two-line subject", func(q *gitwrite.Request, _ *gitwrite.Writer) { q.Message.Subject = "a\nb" }, "line break"},
		{"bad trailer key", func(q *gitwrite.Request, _ *gitwrite.Writer) {
			q.Message.Trailers = append(q.Message.Trailers, gitwrite.Trailer{Key: "Sluice Bundle", Value: "x"})
		}, `trailer key "Sluice Bundle"`},
		{"trailer with a line break", func(q *gitwrite.Request, _ *gitwrite.Writer) {
			q.Message.Trailers = append(q.Message.Trailers, gitwrite.Trailer{Key: "Sluice-Bundle", Value: "x\nSigned-off-by: someone"})
		}, "trailer Sluice-Bundle"},
		{"empty image", func(q *gitwrite.Request, _ *gitwrite.Writer) {
			q.Changes = []gitwrite.Change{gitwrite.KustomizeImage{Dir: "overlays/production", Name: "podinfo"}}
		}, "none of newName, newTag and digest"},
	} {
		q, w := r.request(promote), newWriter()
		tc.edit(&q, w)
		_, err := w.Write(context.Background(), q)
		g.Expect(err).To(MatchError(ContainSubstring(tc.want)), tc.name)
	}
	g.Expect(r.head()).To(Equal(head))
}
