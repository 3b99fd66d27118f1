package notify

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/slack-go/slack"
	"k8s.io/apimachinery/pkg/types"
)

const gitSyncSHA = "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345"

// failedSync is the event of a sync that failed to build a broken commit.
// The URL and the error carry a token that must never reach a message.
func failedSync() Event {
	return Event{
		Severity: SeverityError,
		Reason:   "SyncFailed",
		Message:  "BuildFailed: kustomize build failed: deploy/prod/podinfo.yaml: yaml: line 3: mapping values are not allowed in this context",
		GitSync: &GitSyncInfo{
			Name: "apps", Namespace: "flux",
			URL:     "https://x-access-token:ghp_s3cr3tT0ken@github.com/acme/apps.git",
			RefKind: "branch", Ref: "main",
			Revision: "main@sha1:" + gitSyncSHA,
			Subject:  "Scale podinfo <to> 3 & more", Author: "Jane Doe",
			FailureReason: "BuildFailed",
			Error: "kustomize build failed: deploy/prod/podinfo.yaml: yaml: line 3: mapping values are not allowed in this context\n" +
				"while fetching https://x-access-token:ghp_s3cr3tT0ken@github.com/acme/apps.git",
		},
		Time: time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC),
	}
}

// appliedRevision is the event of a revision applied with success.
func appliedRevision() Event {
	return Event{
		Severity: SeverityInfo,
		Reason:   "RevisionApplied",
		Message:  "Applied revision main@sha1:" + gitSyncSHA + ": Bump podinfo to 6.5.0 (1 created, 2 configured, 1 pruned)",
		GitSync: &GitSyncInfo{
			Name: "apps", Namespace: "flux",
			URL:     "ssh://git@gitlab.com/acme/apps.git",
			RefKind: "branch", Ref: "main",
			Revision: "main@sha1:" + gitSyncSHA,
			Subject:  "Bump podinfo to 6.5.0", Author: "Jane Doe",
			Created: 1, Configured: 2, Pruned: 1, ShowChanges: true,
		},
		Time: time.Date(2026, 12, 7, 2, 5, 0, 0, time.UTC),
	}
}

func TestNotifiers_GitSyncPayloads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event func() Event
	}{{"gitsync-failed", failedSync}, {"gitsync-applied", appliedRevision}} {
		for _, typ := range []string{TypeSlack, TypeMSTeams, TypeDiscord, TypeGChat, TypeRocket, TypeGeneric} {
			t.Run(tc.name+"/"+typ, func(t *testing.T) {
				g := NewWithT(t)
				rec := &receiver{answer: "ok"}
				srv := httptest.NewServer(rec)
				defer srv.Close()
				address := srv.URL + "/hook"
				if typ == TypeSlack {
					address = srv.URL + "/services/T000/B000/XXXXXXXX"
				}
				p := provider(typ, address)
				p.Spec.Channel = "deploys"
				n, err := New(context.Background(), nil, p)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n.Post(context.Background(), tc.event())).To(Succeed())
				g.Expect(rec.count()).To(Equal(1))
				g.Expect(string(rec.last())).NotTo(ContainSubstring("ghp_s3cr3tT0ken"), "a credential of the URL reached the message")
				g.Expect(string(rec.last())).NotTo(ContainSubstring("x-access-token"))
				assertGolden(t, tc.name+"-"+typ, rec.last())
			})
		}
	}
}

func TestSlack_GitSyncBlocks(t *testing.T) {
	g := NewWithT(t)
	blocks := slackBlocks(newMessage(failedSync()))
	g.Expect(blocks).To(HaveLen(5))
	g.Expect(blocks[0].(*slack.HeaderBlock).Text.Text).To(Equal("apps.flux: Sync failed"))
	g.Expect(blocks[1].(*slack.SectionBlock).Text.Text).To(Equal(":red_circle: The sync of main@3f2c9a1b7d4e failed: BuildFailed."))
	fields := blocks[2].(*slack.SectionBlock).Fields
	var texts []string
	for _, f := range fields {
		texts = append(texts, f.Text)
	}
	g.Expect(texts).To(Equal([]string{
		"*Repository*\n<https://github.com/acme/apps|https://github.com/acme/apps.git>",
		"*Branch*\nmain",
		"*Revision*\n<https://github.com/acme/apps/commit/" + gitSyncSHA + "|main@3f2c9a1b7d4e>",
		"*Commit*\nScale podinfo &lt;to&gt; 3 &amp; more",
		"*Author*\nJane Doe",
	}))
	g.Expect(blocks[3].(*slack.SectionBlock).Text.Text).To(Equal("```\nkustomize build failed: deploy/prod/podinfo.yaml: yaml: line 3: mapping values are not allowed in this context\nwhile fetching https://github.com/acme/apps.git\n```"))
	g.Expect(blocks[4].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text).
		To(Equal("Reason: BuildFailed | Severity: error | 2026-12-07T02:00:00Z"))
}

func TestGitSync_Reminder(t *testing.T) {
	g := NewWithT(t)
	e := failedSync()
	e.GitSync.Reminder = true
	m := newMessage(e)
	g.Expect(m.Headline).To(Equal("apps.flux: Sync failed (reminder)"))
	g.Expect(m.Text).To(Equal("The sync of main@3f2c9a1b7d4e still fails: BuildFailed."))
}

func TestGitSync_Objects(t *testing.T) {
	g := NewWithT(t)
	e := Event{Severity: SeverityInfo, Reason: "DriftCorrected", Message: "Corrected drift of 1 object changed outside Git: Deployment/prod/podinfo (configured)",
		GitSync: &GitSyncInfo{Name: "apps", Namespace: "flux", URL: "https://gitea.example.com/acme/apps.git", RefKind: "tag", Ref: "v1.2.0",
			Revision: "v1.2.0@sha1:" + gitSyncSHA, Objects: []string{"Deployment/prod/podinfo (configured)"}}}
	m := newMessage(e)
	g.Expect(m.Headline).To(Equal("apps.flux: Drift corrected"))
	g.Expect(m.ListTitle).To(Equal("Corrected objects"))
	g.Expect(m.Checks).To(Equal([]string{"Deployment/prod/podinfo (configured)"}))
	g.Expect(m.Fields[1]).To(Equal(field{Title: "Tag", Value: "v1.2.0"}))
	g.Expect(m.Fields[2].URL).To(Equal("https://gitea.example.com/acme/apps/commit/" + gitSyncSHA))
	g.Expect(m.Code).To(BeEmpty())
}

func TestCommitURL_KnownHosts(t *testing.T) {
	sha := gitSyncSHA
	tests := []struct{ repo, want string }{
		{"https://github.com/acme/apps.git", "https://github.com/acme/apps/commit/" + sha},
		{"ssh://git@github.com/acme/apps.git", "https://github.com/acme/apps/commit/" + sha},
		{"https://gitlab.com/group/sub/apps.git", "https://gitlab.com/group/sub/apps/-/commit/" + sha},
		{"https://bitbucket.org/acme/apps.git", "https://bitbucket.org/acme/apps/commits/" + sha},
		{"https://dev.azure.com/org/project/_git/apps", "https://dev.azure.com/org/project/_git/apps/commit/" + sha},
		{"ssh://git@ssh.dev.azure.com/v3/org/project/apps", "https://dev.azure.com/org/project/_git/apps/commit/" + sha},
		{"https://gitea.example.com/acme/apps.git", "https://gitea.example.com/acme/apps/commit/" + sha},
		{"https://codeberg.org/acme/apps.git", "https://codeberg.org/acme/apps/commit/" + sha},
		{"https://git.example.com/acme/apps.git", ""},
		{"http://127.0.0.1:3000/acme/apps.git", ""},
		{"ssh://git@gitea.example.com/acme/apps.git", ""},
		{"https://github.com/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			NewWithT(t).Expect(commitURL(tt.repo, sha)).To(Equal(tt.want))
		})
	}
	NewWithT(t).Expect(commitURL("https://github.com/acme/apps.git", "")).To(BeEmpty())
}

func TestDispatcher_DispatchToGitSync(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := newTestDispatcher(t, DispatcherOptions{}, named(provider(TypeGeneric, srv.URL), "hook"))
	e := failedSync()
	d.DispatchTo(types.NamespacedName{Namespace: "test", Name: "hook"}, "team", e)
	e.GitSync.Error = "changed by the caller after the call"
	g.Eventually(rec.count).Should(Equal(1))
	var got GenericGitSyncPayload
	g.Expect(json.Unmarshal(rec.last(), &got)).To(Succeed())
	g.Expect(got.GitSync).To(Equal("apps"))
	g.Expect(got.Reason).To(Equal("SyncFailed"))
	g.Expect(got.URL).To(Equal("https://github.com/acme/apps.git"))
	g.Expect(got.Error).To(HavePrefix("kustomize build failed"), "the Dispatcher keeps its own copy")
	g.Eventually(func() float64 { return counterValue(d.delivered.WithLabelValues(TypeGeneric, "flux")) }).Should(Equal(1.0))
}

// FuzzGitSyncPayloads checks that every payload builder copes with any text
// (a URL that does not parse, a revision without a SHA, markup), and that
// the URL's user information never reaches the repository field.
func FuzzGitSyncPayloads(f *testing.F) {
	f.Add("https://u:tok@github.com/a/b.git", "main@sha1:abc", "error <&>", "subject")
	f.Fuzz(func(t *testing.T, url, revision, errText, subject string) {
		e := failedSync()
		e.GitSync.URL, e.GitSync.Revision, e.GitSync.Error, e.GitSync.Subject = url, revision, errText, subject
		m := newMessage(e)
		if u, err := neturl.Parse(url); err == nil && u.User != nil && u.User.String() != "" && strings.Contains(m.Fields[0].Value, u.User.String()+"@") {
			t.Fatalf("the user information of %q is in %q", url, m.Fields[0].Value)
		}
		for _, v := range []any{teamsPayload(m), discordPayload(m, "u"), gchatPayload(m), rocketPayload(m, "c", "u"), genericGitSyncPayload(e), slackWebhookMessage(m, "c", "u")} {
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("%T: %v", v, err)
			}
		}
	})
}
