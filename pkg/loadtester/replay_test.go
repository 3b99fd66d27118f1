package loadtester

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// captured is a signed call as an attacker on the path would record it.
type captured struct {
	header http.Header
	body   []byte
}

// capture has Sluice's webhook client call path on a recording server,
// signed with key, and returns the recorded call.
func capture(t *testing.T, path string, key string) captured {
	t.Helper()
	var got captured
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.header = r.Header.Clone()
		got.body, _ = io.ReadAll(r.Body)
	}))
	defer rec.Close()
	c := webhooks.New()
	c.Secret = func(context.Context, string, string) ([]byte, error) { return []byte(key), nil }
	canary := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	hook := sluicev1beta1.CanaryWebhook{Name: "gate", URL: rec.URL + path, SecretRef: &corev1.LocalObjectReference{Name: "hmac"}}
	if err := c.Call(t.Context(), canary, hook, sluicev1beta1.CanaryPhaseProgressing); err != nil {
		t.Fatal(err)
	}
	if got.header.Get(webhooks.SignatureHeader) == "" {
		t.Fatal("the call was not signed")
	}
	return got
}

// resend sends a captured call, byte for byte, to url.
func resend(t *testing.T, url string, c captured) (int, map[string]any) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(c.body))
	r.Header = c.header.Clone()
	return do(t, r)
}

// signerWithOperate is a client that signs and may operate gates, so that
// only the signature's binding to its path stops a redirected call.
func signerWithOperate(t *testing.T, replay webhooks.ReplayGuard) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(&AuthFile{Clients: []Client{
		{Name: "signing-bot", HMACKey: testHMACKey, Namespaces: []string{"test"}, Scopes: []Scope{ScopeCheck, ScopeOperate}},
	}}, time.Minute, replay)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSignedCallCannotBeRedirected: a captured signed /gate/check call sent
// to /gate/open, /rollback/open or with another query is refused.
func TestSignedCallCannotBeRedirected(t *testing.T) {
	g := NewWithT(t)
	s, hs := newServer(t, Config{Auth: signerWithOperate(t, nil)})
	for _, path := range []string{"/gate/open", "/rollback/open", "/gate/close", "/gate/check?x=1"} {
		c := capture(t, "/gate/check", testHMACKey)
		code, out := resend(t, hs.URL+path, c)
		g.Expect(code).To(Equal(http.StatusUnauthorized), path)
		g.Expect(out["error"]).To(ContainSubstring("signature mismatch"), path)
	}
	for _, kind := range []GateKind{KindGate, KindRollback} {
		open, err := s.gates.IsOpen(t.Context(), kind, "test", "podinfo")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(open).To(BeFalse(), "a redirected call opened the %s", kind)
	}
	// The call is accepted where it was signed for.
	code, out := resend(t, hs.URL+"/gate/check", capture(t, "/gate/check", testHMACKey))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring("is closed"))
}

// TestSignedCallCannotBeReplayed: the same captured call is accepted once.
func TestSignedCallCannotBeReplayed(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{Auth: signerWithOperate(t, nil)})
	c := capture(t, "/gate/open", testHMACKey)
	code, _ := resend(t, hs.URL+"/gate/open", c)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, out := resend(t, hs.URL+"/gate/open", c)
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	g.Expect(out["error"]).To(ContainSubstring("already used (a replayed call)"))
}

// TestReplayGuardPerPod: with the in-memory cache (--gate-store=memory) ids
// are remembered per replica: the replica that accepted a call refuses it
// again, another replica does not know it. This is the documented
// single-replica limit of the memory store.
func TestReplayGuardPerPod(t *testing.T) {
	g := NewWithT(t)
	_, a := newServer(t, Config{Auth: signerWithOperate(t, webhooks.NewReplayCache(0))})
	_, b := newServer(t, Config{Auth: signerWithOperate(t, webhooks.NewReplayCache(0))})
	c := capture(t, "/gate/check", testHMACKey)
	code, _ := resend(t, a.URL+"/gate/check", c)
	g.Expect(code).To(Equal(http.StatusForbidden), "accepted; the gate is closed")
	code, _ = resend(t, a.URL+"/gate/check", c)
	g.Expect(code).To(Equal(http.StatusUnauthorized), "the same replica refuses the replay")
	code, _ = resend(t, b.URL+"/gate/check", c)
	g.Expect(code).To(Equal(http.StatusForbidden), "another memory replica does not know the id")
}

// TestReplayGuardSharedByReplicas: with ConfigMapReplayGuard (the default
// next to ConfigMap gates) a call accepted by one replica is refused by
// another, and Prune forgets expired ids only.
func TestReplayGuardSharedByReplicas(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "replay")
	g.Expect(err).NotTo(HaveOccurred())
	replica := func() (*ConfigMapReplayGuard, *httptest.Server) {
		cs, err := kubernetes.NewForConfig(env.Config)
		g.Expect(err).NotTo(HaveOccurred())
		guard := NewConfigMapReplayGuard(cs, ns)
		_, hs := newServer(t, Config{Auth: signerWithOperate(t, guard), Gates: NewConfigMapGates(cs, ns)})
		return guard, hs
	}
	guard, a := replica()
	_, b := replica()

	c := capture(t, "/gate/open", testHMACKey)
	code, out := resend(t, a.URL+"/gate/open", c)
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", out)
	code, out = resend(t, b.URL+"/gate/open", c)
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	g.Expect(out["error"]).To(ContainSubstring("already used"))
	code, _ = resend(t, a.URL+"/gate/open", c)
	g.Expect(code).To(Equal(http.StatusUnauthorized))

	cs, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	ids := func() int {
		l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelRequestID})
		g.Expect(err).NotTo(HaveOccurred())
		return len(l.Items)
	}
	g.Expect(ids()).To(Equal(1))
	n, err := guard.Prune(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(0), "the id has not expired")
	guard.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	n, err = guard.Prune(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	g.Expect(ids()).To(Equal(0))

	// An id that cannot be recorded (here: no such namespace) refuses the
	// call with 503, not 401: the caller did nothing wrong.
	broken := NewConfigMapReplayGuard(cs, "no-such-namespace")
	_, hs := newServer(t, Config{Auth: signerWithOperate(t, broken)})
	code, out = resend(t, hs.URL+"/gate/check", capture(t, "/gate/check", testHMACKey))
	g.Expect(code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(out["error"]).To(ContainSubstring("failed to record"))
}
