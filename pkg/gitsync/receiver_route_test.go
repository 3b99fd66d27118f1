package gitsync_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// pushTo is a GitHub-shaped push of ref to the repository at cloneURL.
func pushTo(ref, cloneURL, sshURL string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": ref, "before": strings.Repeat("0", 40), "after": strings.Repeat("1", 40),
		"commits":    []map[string]any{{"id": strings.Repeat("1", 40), "message": `fix "ref":"refs/heads/other"`}},
		"repository": map[string]any{"name": "platform", "clone_url": cloneURL, "ssh_url": sshURL, "html_url": strings.TrimSuffix(cloneURL, ".git")},
		"sender":     map[string]any{"html_url": "https://github.com/jdoe"},
	})
	return b
}

// postRead posts and returns the status and the body of the answer.
func postRead(t *testing.T, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// TestReceiver_RoutesPushToFollowers: a push payload received on one
// GitSync's hook requests a sync of every GitSync of the namespace that
// follows the pushed repository and ref (whatever URL form each uses), and
// of no other: not another branch, not another repository, not a pinned
// commit, not a suspended one, not one in another namespace.
func TestReceiver_RoutesPushToFollowers(t *testing.T) {
	g := NewWithT(t)
	ns, other := namespace(t), namespace(t)
	const repo = "https://github.com/acme/platform.git"
	branch := func(b string) func(*sluicev1beta1.GitSync) {
		return func(gs *sluicev1beta1.GitSync) { gs.Spec.Ref = &sluicev1beta1.GitRef{Branch: b} }
	}
	newGitSync(t, ns, "hook", "https://example.invalid/elsewhere.git", hourly, withReceiver(ns, t))
	newGitSync(t, ns, "infra", repo, hourly)
	newGitSync(t, ns, "apps-ssh", "ssh://git@github.com/acme/platform.git", hourly)
	newGitSync(t, ns, "apps-scp", "https://github.com/acme/platform", hourly, branch("main"))
	newGitSync(t, ns, "dev", repo, hourly, branch("dev"))
	newGitSync(t, ns, "fork", "https://github.com/jdoe/platform.git", hourly)
	newGitSync(t, ns, "pinned", repo, hourly, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Ref = &sluicev1beta1.GitRef{Commit: strings.Repeat("a", 40)}
	})
	newGitSync(t, ns, "releases", repo, hourly, func(gs *sluicev1beta1.GitSync) { gs.Spec.Ref = &sluicev1beta1.GitRef{SemVer: ">=1.0.0"} })
	newGitSync(t, ns, "paused", repo, hourly, func(gs *sluicev1beta1.GitSync) { gs.Spec.Suspend = true })
	newGitSync(t, other, "infra", repo, hourly)
	all := []string{"hook", "infra", "apps-ssh", "apps-scp", "dev", "fork", "pinned", "releases", "paused"}

	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client, MinInterval: time.Millisecond})
	t.Cleanup(srv.Close)
	url := srv.URL + "/hooks/" + ns + "/hook"
	requested := func(g Gomega, namespace, name string) string {
		return getGitSync(g, namespace, name).Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	}
	seen := map[string]string{}
	// expect waits until exactly want (of all) have a new request, and checks the others stay as they were.
	expect := func(want ...string) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			for _, n := range want {
				g.Expect(requested(g, ns, n)).NotTo(Equal(seen[n]), n)
			}
		}, 5*time.Second, 50*time.Millisecond).Should(Succeed())
		for _, n := range all {
			now := requested(g, ns, n)
			if !contains(want, n) {
				g.Expect(now).To(Equal(seen[n]), "%s must not be triggered", n)
			}
			seen[n] = now
		}
		g.Expect(requested(g, other, "infra")).To(BeEmpty(), "another namespace's GitSync must not be triggered")
	}

	push := pushTo("refs/heads/main", repo, "git@github.com:acme/platform.git")
	code, msg := postRead(t, url, push, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, push), "X-GitHub-Event": "push"})
	g.Expect(code).To(Equal(http.StatusAccepted), msg)
	g.Expect(msg).To(Equal("sync requested: apps-scp, apps-ssh, infra\n"))
	expect("infra", "apps-ssh", "apps-scp")

	time.Sleep(5 * time.Millisecond) // past MinInterval
	push = pushTo("refs/heads/dev", repo, "")
	code, msg = postRead(t, url, push, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, push)})
	g.Expect(code).To(Equal(http.StatusAccepted), msg)
	expect("dev")

	// GitLab's shape, a tag: the semver follower only.
	time.Sleep(5 * time.Millisecond)
	tag := []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1.4.0","project":{"git_http_url":"https://github.com/acme/platform.git","web_url":"https://github.com/acme/platform"}}`)
	code, msg = postRead(t, url, tag, map[string]string{gitsync.GitLabTokenHeader: hookSecret, "X-Gitlab-Event": "Tag Push Hook"})
	g.Expect(code).To(Equal(http.StatusAccepted), msg)
	expect("releases")

	// Nobody follows this branch: accepted, nothing requested, and the answer says so.
	time.Sleep(5 * time.Millisecond)
	push = pushTo("refs/heads/feature", repo, "")
	code, msg = postRead(t, url, push, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, push)})
	g.Expect(code).To(Equal(http.StatusOK), msg)
	g.Expect(msg).To(ContainSubstring("no GitSync in namespace " + ns + " follows refs/heads/feature of github.com/acme/platform"))
	// A ping (sent when the hook is created) requests nothing.
	code, _ = postRead(t, url, push, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, push), "X-GitHub-Event": "ping"})
	g.Expect(code).To(Equal(http.StatusOK))
	time.Sleep(300 * time.Millisecond)
	expect()

	// A forged payload with a valid-looking shape but another hook's secret is refused before routing.
	code, _ = postRead(t, url, push, map[string]string{gitsync.GitHubSignatureHeader: githubSig("not-the-secret", push)})
	g.Expect(code).To(Equal(http.StatusUnauthorized))
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
