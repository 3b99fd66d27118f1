package dashboard

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestCommitURL(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name, repo string
		provider   sluicev1beta1.CommitStatusProvider
		sha, want  string
	}{
		{"GitHub over HTTPS", "https://github.com/acme/app.git", "", sha, "https://github.com/acme/app/commit/" + sha},
		{"GitHub over scp-like SSH", "git@github.com:acme/app.git", "", sha, "https://github.com/acme/app/commit/" + sha},
		{"GitHub over ssh://, credentials dropped", "ssh://git:secret@github.com:22/acme/app", "", sha, "https://github.com/acme/app/commit/" + sha},
		{"credentials in an HTTPS URL are dropped", "https://user:token@github.com/acme/app", "", sha, "https://github.com/acme/app/commit/" + sha},
		{"GitLab with subgroups", "https://gitlab.com/group/sub/project.git", "", sha, "https://gitlab.com/group/sub/project/-/commit/" + sha},
		{"self-hosted GitLab by its name", "https://gitlab.example.com/team/app", "", sha, "https://gitlab.example.com/team/app/-/commit/" + sha},
		{"Codeberg (Forgejo)", "https://codeberg.org/acme/app.git", "", sha, "https://codeberg.org/acme/app/commit/" + sha},
		{"self-hosted Gitea named by commitStatus, port kept", "http://127.0.0.1:3000/acme/app.git", sluicev1beta1.CommitStatusGitea, sha, "http://127.0.0.1:3000/acme/app/commit/" + sha},
		{"GitHub Enterprise named by commitStatus", "https://git.corp.example/acme/app", sluicev1beta1.CommitStatusGitHub, sha, "https://git.corp.example/acme/app/commit/" + sha},
		{"Bitbucket Cloud", "https://bitbucket.org/acme/app.git", "", sha, "https://bitbucket.org/acme/app/commits/" + sha},
		{"abbreviated SHA", "https://github.com/acme/app", "", "0123456", "https://github.com/acme/app/commit/0123456"},
		{"unknown host: no link", "https://git.example.com/acme/app.git", "", sha, ""},
		{"Bitbucket Server: no link (another URL shape)", "https://bitbucket.example.com/scm/acme/app.git", sluicev1beta1.CommitStatusBitbucketServer, sha, ""},
		{"not a SHA: no link", "https://github.com/acme/app", "", "main", ""},
		{"a SHA with markup: no link", "https://github.com/acme/app", "", sha[:10] + "<b>", ""},
		{"no repository path: no link", "https://github.com/", "", sha, ""},
		{"a file URL: no link", "file:///srv/git/app.git", "", sha, ""},
		{"a path that needs escaping stays one path", "https://github.com/acme/app with space", "", sha, "https://github.com/acme/app%20with%20space/commit/" + sha},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(commitURL(tc.repo, tc.provider, tc.sha)).To(Equal(tc.want))
		})
	}
}

func TestRevisionSHA(t *testing.T) {
	g := NewWithT(t)
	g.Expect(revisionSHA("main@sha1:0123456789abcdef0123456789abcdef01234567")).To(Equal("0123456789abcdef0123456789abcdef01234567"))
	g.Expect(revisionSHA("v1.2.0@sha1:ABCDEF0")).To(Equal("abcdef0"))
	g.Expect(revisionSHA("0123456789ab")).To(Equal("0123456789ab"))
	g.Expect(revisionSHA("podinfo-6.9.0")).To(BeEmpty())
	g.Expect(revisionSHA("")).To(BeEmpty())
}
