package loadtester

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

func TestAuthentication(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	body := payload("podinfo", "test", nil)
	req := func(mod func(*http.Request)) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, hs.URL+"/gate/check", bytes.NewReader(body))
		mod(r)
		return r
	}

	code, out := do(t, req(func(*http.Request) {}))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "no credentials")
	g.Expect(out["error"]).To(ContainSubstring("unauthenticated"))

	sign := func(key string, b []byte, at time.Time) func(*http.Request) {
		return func(r *http.Request) {
			g.Expect(webhooks.SignRequest(r, []byte(key), b, at)).To(Succeed())
		}
	}
	code, _ = do(t, req(sign("wrong-key", body, time.Now())))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "wrong key")

	code, _ = do(t, req(sign(testHMACKey, []byte(`{"name":"other","namespace":"test"}`), time.Now())))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "signature of another body")

	code, out = do(t, req(sign(testHMACKey, body, time.Now().Add(-time.Hour))))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "stale signature")
	g.Expect(out["error"]).To(ContainSubstring("outside the accepted window"))

	// The replayable v1 scheme (timestamp and body only) is refused, with the reason.
	code, out = do(t, req(func(r *http.Request) {
		r.Header.Set(webhooks.SignatureHeader, "t="+strconv.FormatInt(time.Now().Unix(), 10)+",v1="+strings.Repeat("0", 64))
	}))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "v1 signature")
	g.Expect(out["error"]).To(ContainSubstring("v1 signatures"))

	code, _ = do(t, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-the-token-at-all") }))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "wrong token")

	// Valid credentials reach the gate, which starts closed: 403 from the gate.
	code, out = do(t, req(sign(testHMACKey, body, time.Now())))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring("is closed"))
	code, out = do(t, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring("is closed"))

	// approve needs credentials too.
	code, _ = do(t, func() *http.Request { r, _ := http.NewRequest(http.MethodPost, hs.URL+"/gate/approve", nil); return r }())
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	code, _ = post(t, hs.URL+"/gate/approve", body)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = post(t, hs.URL+"/gate/halt", body)
	g.Expect(code).To(Equal(http.StatusForbidden))
}

func TestNamespaceOfIdentity(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	// The HMAC client may use "test" only; the token client "test" and "other".
	code, out := post(t, hs.URL+"/gate/check", payload("podinfo", "other", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring(`may not act on namespace "other"`))

	code, _ = operate(t, hs.URL+"/gate/open", payload("podinfo", "other", nil))
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = operate(t, hs.URL+"/gate/open", payload("podinfo", "kube-system", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
}

// TestSluiceKeyCannotOpenGates: the key Sluice signs with has the default
// scope, check: Sluice's own webhook client is refused at /gate/open and
// /rollback/open with a 403 that says why, and may still check.
func TestSluiceKeyCannotOpenGates(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	c := webhooks.New()
	c.Secret = func(context.Context, string, string) ([]byte, error) { return []byte(testHMACKey), nil }
	canary := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	hook := func(path string) sluicev1beta1.CanaryWebhook {
		return sluicev1beta1.CanaryWebhook{Name: "gate", URL: hs.URL + path, SecretRef: &corev1.LocalObjectReference{Name: "hmac"}}
	}
	for _, path := range []string{"/gate/open", "/gate/close", "/rollback/open", "/rollback/close"} {
		err := c.Call(t.Context(), canary, hook(path), sluicev1beta1.CanaryPhaseProgressing)
		g.Expect(err).To(MatchError(ContainSubstring("403 Forbidden")), path)
		g.Expect(err).To(MatchError(ContainSubstring("lacks scope")), path)
		g.Expect(err).To(MatchError(ContainSubstring("a client a person holds")), path)
	}
	code, out := post(t, hs.URL+"/gate/open", payload("podinfo", "test", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(Equal(`client "sluice" lacks scope "operate" in namespace "test" (it has [check]), which /gate/open needs: ` +
		"opening and closing gates is for a client a person holds, not Sluice's signing key"))
	err := c.Call(t.Context(), canary, hook("/gate/check"), sluicev1beta1.CanaryPhaseProgressing)
	g.Expect(err).To(MatchError(ContainSubstring("is closed")), "checks are in scope")

	// A person's token opens it; then Sluice's check passes.
	code, _ = operate(t, hs.URL+"/gate/open", payload("podinfo", "test", nil))
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(c.Call(t.Context(), canary, hook("/gate/check"), sluicev1beta1.CanaryPhaseProgressing)).To(Succeed())
}

// TestScopesPerNamespace: bot may operate in "test" but only check in "ro";
// a client with operate only may not approve.
func TestScopesPerNamespace(t *testing.T) {
	g := NewWithT(t)
	f := testClients()
	f.Clients = append(f.Clients, Client{Name: "opener", Token: "opener-token-0123456789", Namespaces: []string{"*"}, Scopes: []Scope{ScopeOperate}})
	a, err := NewAuthenticator(f, time.Minute, nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, hs := newServer(t, Config{Auth: a})

	code, out := operate(t, hs.URL+"/gate/check", payload("podinfo", "ro", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring("is closed"), "check is granted in ro")
	code, out = operate(t, hs.URL+"/gate/open", payload("podinfo", "ro", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring(`client "bot" lacks scope "operate" in namespace "ro" (it has [check])`))

	bearer := func(path string, body []byte) (int, map[string]any) {
		r, _ := http.NewRequest(http.MethodPost, hs.URL+path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer opener-token-0123456789")
		return do(t, r)
	}
	code, _ = bearer("/gate/open", payload("podinfo", "prod", nil))
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, out = bearer("/gate/check", payload("podinfo", "prod", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring(`lacks scope "check"`))
	code, out = bearer("/gate/approve", nil)
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring(`client "opener" lacks scope "check"`))
}

func TestLoadAuthFile(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "auth.yaml")
	g.Expect(os.WriteFile(good, []byte(`clients:
- name: sluice
  hmacKey: k
  namespaces: ["*"]
- name: bot
  token: 0123456789abcdef0123
  namespaces: [test]
- name: alice
  token: alice-0123456789abcdef
  grants:
  - namespaces: [test]
    scopes: [check, operate]
  - namespaces: [prod]
`), 0o600)).To(Succeed())
	f, err := LoadAuthFile(good)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.Clients).To(HaveLen(3))
	g.Expect(f.Clients[0].Allows(ScopeCheck, "anything")).To(BeTrue())
	g.Expect(f.Clients[0].Allows(ScopeOperate, "anything")).To(BeFalse(), "check only by default")
	g.Expect(f.Clients[1].Allows(ScopeCheck, "prod")).To(BeFalse())
	g.Expect(f.Clients[2].Allows(ScopeOperate, "test")).To(BeTrue())
	g.Expect(f.Clients[2].Allows(ScopeOperate, "prod")).To(BeFalse())
	g.Expect(f.Clients[2].ScopesIn("prod")).To(Equal([]Scope{ScopeCheck}))

	for name, content := range map[string]string{
		"empty":       "clients: []",
		"no-secret":   "clients: [{name: a, namespaces: [x]}]",
		"no-ns":       "clients: [{name: a, hmacKey: k}]",
		"short-token": "clients: [{name: a, token: abc, namespaces: [x]}]",
		"unknown-key": "clients: [{name: a, hmacKey: k, namespaces: [x], namespace: y}]",
		"bad-scope":   "clients: [{name: a, hmacKey: k, namespaces: [x], scopes: [admin]}]",
		"scopes-only": "clients: [{name: a, hmacKey: k, scopes: [check]}]",
		"empty-grant": "clients: [{name: a, hmacKey: k, grants: [{scopes: [operate]}]}]",
	} {
		p := filepath.Join(dir, name)
		g.Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
		_, err := LoadAuthFile(p)
		g.Expect(err).To(HaveOccurred(), name)
	}
}

func TestAuthenticatorUpdate(t *testing.T) {
	g := NewWithT(t)
	a := testAuth(t)
	body := []byte(`{}`)
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	c, err := a.Authenticate(r, body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Name).To(Equal("bot"))

	g.Expect(a.Update(&AuthFile{})).NotTo(Succeed(), "an empty file is refused")
	_, err = a.Authenticate(r, body)
	g.Expect(err).NotTo(HaveOccurred(), "the old clients stay")

	g.Expect(a.Update(&AuthFile{Clients: []Client{{Name: "new", Token: "rotated-token-0123456789", Namespaces: []string{"*"}}}})).To(Succeed())
	_, err = a.Authenticate(r, body)
	g.Expect(err).To(MatchError(ErrUnauthenticated))
	r.Header.Set("Authorization", "Bearer rotated-token-0123456789")
	c, err = a.Authenticate(r, body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Name).To(Equal("new"))
}
