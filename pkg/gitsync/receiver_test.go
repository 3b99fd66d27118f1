package gitsync_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

const hookSecret = "s3cret-token"

// syncedOnce waits for the first sync of a GitSync and returns it.
func syncedOnce(t *testing.T, g Gomega, ns, name string) {
	t.Helper()
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, name)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
}

func hourly(gs *sluicev1beta1.GitSync) { gs.Spec.Interval = &metav1.Duration{Duration: time.Hour} }

func withReceiver(ns string, t *testing.T) func(*sluicev1beta1.GitSync) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"},
		Data:       map[string][]byte{gitsync.ReceiverSecretKey: []byte(hookSecret)},
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Receiver = &sluicev1beta1.GitSyncReceiver{SecretRef: corev1.LocalObjectReference{Name: "hook"}}
	}
}

// TestGitSync_SyncNowAnnotation: with a 1h interval, a new commit is applied
// within seconds of setting the sync-requested-at annotation.
func TestGitSync_SyncNowAnnotation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "syncnow")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "app", r.URL, hourly)
	syncedOnce(t, g, ns, "app")

	sha := r.write("v2", map[string]string{"config.yaml": configMapYAML("settings", "v2")})
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
	}, 2*time.Second).Should(Succeed())

	gs := getGitSync(g, ns, "app")
	g.Expect(gs.Status.LastHandledSyncRequest).To(BeEmpty())
	g.Expect(gitsync.RequestSync(ctx, env.Client, gs, time.Now())).To(Succeed())
	requested := gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	g.Expect(requested).NotTo(BeEmpty())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
		got := getGitSync(g, ns, "app").Status
		g.Expect(got.LastAppliedRevision).To(Equal("main@sha1:" + sha))
		// The status tells the requester that its request was handled.
		g.Expect(got.LastHandledSyncRequest).To(Equal(requested))
	}, 5*time.Second, 100*time.Millisecond).Should(Succeed())
}

func githubSig(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// sluiceSig signs a POST of body to target as Sluice's webhooks do.
func sluiceSig(t *testing.T, secret, target string, body []byte, at time.Time) string {
	t.Helper()
	sig, err := webhooks.Sign([]byte(secret), http.MethodPost, target, body, at, webhooks.NewRequestID())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func post(t *testing.T, url string, body []byte, headers map[string]string) int {
	t.Helper()
	code, _ := postRead(t, url, body, headers)
	return code
}

// TestReceiver_TriggersSync: a signed push (each style) patches the
// annotation within a second, and the new commit is applied at once.
func TestReceiver_TriggersSync(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "receiver")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "app", r.URL, hourly, withReceiver(ns, t))
	syncedOnce(t, g, ns, "app")
	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client, MinInterval: time.Millisecond})
	t.Cleanup(srv.Close)
	url := srv.URL + "/hooks/" + ns + "/app"

	styles := map[string]func([]byte) map[string]string{
		"github": func(b []byte) map[string]string {
			return map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, b)}
		},
		"gitlab": func([]byte) map[string]string {
			return map[string]string{gitsync.GitLabTokenHeader: hookSecret}
		},
		"generic": func(b []byte) map[string]string {
			return map[string]string{webhooks.SignatureHeader: sluiceSig(t, hookSecret, "/hooks/"+ns+"/app", b, time.Now())}
		},
	}
	for _, style := range []string{"github", "gitlab", "generic"} {
		value := "v-" + style
		sha := r.write(style, map[string]string{"config.yaml": configMapYAML("settings", value)})
		before := getGitSync(g, ns, "app").Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
		body := []byte(`{"ref":"refs/heads/main"}`)
		start := time.Now()
		g.Expect(post(t, url, body, styles[style](body))).To(Equal(http.StatusAccepted), style)
		g.Eventually(func(g Gomega) {
			a := getGitSync(g, ns, "app").Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
			g.Expect(a).NotTo(BeEmpty())
			g.Expect(a).NotTo(Equal(before))
		}, time.Second, 50*time.Millisecond).Should(Succeed(), style)
		g.Eventually(func(g Gomega) {
			g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal(value))
			g.Expect(getGitSync(g, ns, "app").Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
		}, 5*time.Second, 50*time.Millisecond).Should(Succeed(), style)
		t.Logf("%s: applied %s after %s", style, sha[:7], time.Since(start))
	}
}

// TestReceiver_Refuses: bad signatures, unknown GitSyncs, GitSyncs without
// a receiver, and huge bodies.
func TestReceiver_Refuses(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newGitSync(t, ns, "app", "https://example.invalid/repo.git", hourly, withReceiver(ns, t))
	newGitSync(t, ns, "plain", "https://example.invalid/repo.git", hourly)
	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client})
	t.Cleanup(srv.Close)
	url := srv.URL + "/hooks/" + ns + "/app"
	body := []byte(`{"ref":"refs/heads/main"}`)

	for name, h := range map[string]map[string]string{
		"none":             {},
		"github wrong":     {gitsync.GitHubSignatureHeader: githubSig("wrong", body)},
		"github malformed": {gitsync.GitHubSignatureHeader: "sha1=abc"},
		"gitlab wrong":     {gitsync.GitLabTokenHeader: "wrong"},
		"generic wrong":    {webhooks.SignatureHeader: sluiceSig(t, "wrong", "/hooks/"+ns+"/app", body, time.Now())},
		"generic stale":    {webhooks.SignatureHeader: sluiceSig(t, hookSecret, "/hooks/"+ns+"/app", body, time.Now().Add(-time.Hour))},
		"generic v1":       {webhooks.SignatureHeader: "t=1,v1=" + strings.Repeat("0", 64)},
	} {
		g.Expect(post(t, url, body, h)).To(Equal(http.StatusUnauthorized), name)
	}
	// A signature over another body.
	g.Expect(post(t, url, []byte(`{"ref":"x"}`), map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, body)})).To(Equal(http.StatusUnauthorized))

	good := map[string]string{gitsync.GitLabTokenHeader: hookSecret}
	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/missing", body, good)).To(Equal(http.StatusNotFound))
	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/plain", body, good)).To(Equal(http.StatusNotFound))
	g.Expect(post(t, srv.URL+"/hooks/"+ns, body, good)).To(Equal(http.StatusNotFound))

	huge := []byte(strings.Repeat("x", gitsync.MaxReceiverBody+1))
	g.Expect(post(t, url, huge, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, huge)})).To(Equal(http.StatusRequestEntityTooLarge))

	// Refused calls patched nothing.
	g.Expect(getGitSync(g, ns, "app").Annotations).NotTo(HaveKey(sluicev1beta1.GitSyncSyncRequestedAnnotation))
	// Rate limit: the second of two quick accepted calls is refused.
	g.Expect(post(t, url, body, good)).To(Equal(http.StatusAccepted))
	g.Expect(post(t, url, body, good)).To(Equal(http.StatusTooManyRequests))
}

// TestReceiver_SluiceSignatureBoundToPathAndOnce: a Sluice signature made
// for another GitSync's hook is refused, and an accepted call is accepted
// once.
func TestReceiver_SluiceSignatureBoundToPathAndOnce(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newGitSync(t, ns, "app", "https://example.invalid/repo.git", hourly, withReceiver(ns, t))
	newGitSync(t, ns, "other", "https://example.invalid/repo.git", hourly, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Receiver = &sluicev1beta1.GitSyncReceiver{SecretRef: corev1.LocalObjectReference{Name: "hook"}}
	})
	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client, MinInterval: time.Millisecond})
	t.Cleanup(srv.Close)
	body := []byte(`{"ref":"refs/heads/main"}`)

	forOther := map[string]string{webhooks.SignatureHeader: sluiceSig(t, hookSecret, "/hooks/"+ns+"/other", body, time.Now())}
	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/app", body, forOther)).To(Equal(http.StatusUnauthorized), "signed for another path")
	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/app?x=1", body, map[string]string{
		webhooks.SignatureHeader: sluiceSig(t, hookSecret, "/hooks/"+ns+"/app", body, time.Now()),
	})).To(Equal(http.StatusUnauthorized), "signed without the query")
	g.Expect(getGitSync(g, ns, "app").Annotations).NotTo(HaveKey(sluicev1beta1.GitSyncSyncRequestedAnnotation))

	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/other", body, forOther)).To(Equal(http.StatusAccepted))
	time.Sleep(5 * time.Millisecond) // past MinInterval: only the id refuses
	g.Expect(post(t, srv.URL+"/hooks/"+ns+"/other", body, forOther)).To(Equal(http.StatusUnauthorized), "a replay")
}
