package commitstatus_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestParseRepository(t *testing.T) {
	cases := []struct{ url, host, path, web string }{
		{"https://github.com/acme/app.git", "github.com", "acme/app", "https://github.com"},
		{"https://github.com/acme/app", "github.com", "acme/app", "https://github.com"},
		{"http://127.0.0.1:3000/acme/app.git", "127.0.0.1", "acme/app", "http://127.0.0.1:3000"},
		{"https://gitea.example.com:3443/acme/app.git", "gitea.example.com", "acme/app", "https://gitea.example.com:3443"},
		{"ssh://git@github.com/acme/app.git", "github.com", "acme/app", "https://github.com"},
		{"ssh://git@gitlab.example.com:2222/group/sub/app.git", "gitlab.example.com", "group/sub/app", "https://gitlab.example.com"},
		{"git@github.com:acme/app.git", "github.com", "acme/app", "https://github.com"},
		{"git@gitlab.com:group/sub/app", "gitlab.com", "group/sub/app", "https://gitlab.com"},
		{"https://dev.azure.com/org/project/_git/repo", "dev.azure.com", "org/project/repo", "https://dev.azure.com"},
		{"https://org@dev.azure.com/org/project/_git/repo", "dev.azure.com", "org/project/repo", "https://dev.azure.com"},
		{"git@ssh.dev.azure.com:v3/org/project/repo", "ssh.dev.azure.com", "org/project/repo", "https://ssh.dev.azure.com"},
		{"https://org.visualstudio.com/project/_git/repo", "org.visualstudio.com", "org/project/repo", "https://org.visualstudio.com"},
		{"https://bitbucket.example.com/scm/PROJ/app.git", "bitbucket.example.com", "PROJ/app", "https://bitbucket.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			g := NewWithT(t)
			r, err := commitstatus.ParseRepository(tc.url)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r).To(Equal(commitstatus.Repository{Host: tc.host, Path: tc.path, Web: tc.web}))
		})
	}
}

func TestParseRepository_Invalid(t *testing.T) {
	for _, u := range []string{"", "github.com", "ftp://github.com/acme/app", "https://github.com/", "https://user:pa55@/x"} {
		t.Run(u, func(t *testing.T) {
			g := NewWithT(t)
			_, err := commitstatus.ParseRepository(u)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).NotTo(ContainSubstring("pa55"))
		})
	}
}

func TestNew_Errors(t *testing.T) {
	cases := []struct {
		name string
		cfg  commitstatus.Config
		want string
	}{
		{"unknown type", commitstatus.Config{Type: "svn", URL: "https://x.example.com/a/b", Token: "t"}, "unsupported commit status provider"},
		{"no token", commitstatus.Config{Type: "github", URL: "https://github.com/a/b"}, "token is empty"},
		{"GitHub nested path", commitstatus.Config{Type: "github", URL: "https://github.com/a/b/c", Token: "t"}, "owner/repo"},
		{"GitLab single segment", commitstatus.Config{Type: "gitlab", URL: "https://gitlab.com/a", Token: "t"}, "group/project"},
		{"Azure without _git", commitstatus.Config{Type: "azuredevops", URL: "https://dev.azure.com/org/repo", Token: "t"}, "org/project/repo"},
		{"Bitbucket without username", commitstatus.Config{Type: "bitbucket", URL: "https://bitbucket.org/a/b", Token: "t"}, "username"},
		{"address with credentials", commitstatus.Config{Type: "github", URL: "https://github.com/a/b", Address: "https://u:p@api.example.com", Token: "t"}, "must not carry credentials"},
		{"address not a URL", commitstatus.Config{Type: "gitea", URL: "https://g.example.com/a/b", Address: "g.example.com", Token: "t"}, "must be an https:// URL"},
		{"address http not loopback", commitstatus.Config{Type: "gitea", URL: "https://g.example.com/a/b", Address: "http://g.example.com", Token: "t"}, "in clear text"},
		{"no address for a repository override", commitstatus.Config{Type: "gitea", URL: "not a url", Repository: "a/b", Token: "t"}, "set spec.commitStatus.address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := commitstatus.New(tc.cfg)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestNew_RepositoryOverride(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t)
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://git.internal.example.com/mirror/x/y.git",
		Repository: "acme/app", Address: h.srv.URL, Token: token})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Set(t.Context(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).To(Succeed())
	g.Expect(h.got()[0].Path).To(Equal("/repos/acme/app/statuses/" + sha))
}

func TestSet_RefusesABadSHA(t *testing.T) {
	g := NewWithT(t)
	h := newHost(t)
	p, err := commitstatus.New(commitstatus.Config{Type: "github", URL: "https://github.com/a/b", Address: h.srv.URL, Token: token})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Set(t.Context(), commitstatus.Status{SHA: "../../x", State: commitstatus.Success})).To(MatchError(ContainSubstring("hexadecimal")))
	g.Expect(h.got()).To(BeEmpty())
}

func TestSHAFromRevision(t *testing.T) {
	g := NewWithT(t)
	g.Expect(commitstatus.SHAFromRevision("main@sha1:" + sha)).To(Equal(sha))
	g.Expect(commitstatus.SHAFromRevision("refs/tags/v1@sha1:" + sha)).To(Equal(sha))
	g.Expect(commitstatus.SHAFromRevision("sha1:" + sha)).To(Equal(sha))
	g.Expect(commitstatus.SHAFromRevision(sha)).To(Equal(sha))
}

// TestNew_DefaultAddressFromTheURL: without spec.commitStatus.address, a
// self-hosted host's API is on the scheme, host and port of an http(s)
// URL, as a local Gitea at http://127.0.0.1:port/owner/repo.git.
func TestNew_DefaultAddressFromTheURL(t *testing.T) {
	for _, typ := range []string{"gitea", "gitlab", "bitbucketserver", "github"} {
		t.Run(typ, func(t *testing.T) {
			g := NewWithT(t)
			h := newHost(t)
			p, err := commitstatus.New(commitstatus.Config{Type: typ, URL: h.srv.URL + "/acme/app.git", Token: token})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Set(t.Context(), commitstatus.Status{SHA: sha, State: commitstatus.Success, Context: "c"})).To(Succeed())
			want := map[string]string{
				"gitea":           "/api/v1/repos/acme/app/statuses/" + sha,
				"gitlab":          "/api/v4/projects/acme%2Fapp/statuses/" + sha,
				"bitbucketserver": "/rest/build-status/1.0/commits/" + sha,
				"github":          "/api/v3/repos/acme/app/statuses/" + sha,
			}[typ]
			g.Expect(h.got()).To(HaveLen(1))
			g.Expect(h.got()[0].Path).To(Equal(want))
		})
	}
}
