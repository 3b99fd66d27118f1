package loadtester

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

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

	code, _ = do(t, req(func(r *http.Request) {
		r.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte("wrong-key"), body, time.Now()))
	}))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "wrong key")

	code, _ = do(t, req(func(r *http.Request) {
		r.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte(testHMACKey), []byte(`{"name":"other","namespace":"test"}`), time.Now()))
	}))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "signature of another body")

	code, _ = do(t, req(func(r *http.Request) {
		r.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte(testHMACKey), body, time.Now().Add(-time.Hour)))
	}))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "stale signature")

	code, _ = do(t, req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-the-token-at-all") }))
	g.Expect(code).To(Equal(http.StatusUnauthorized), "wrong token")

	// Valid credentials reach the gate, which starts closed: 403 from the gate.
	code, out = do(t, req(func(r *http.Request) {
		r.Header.Set(webhooks.SignatureHeader, webhooks.Sign([]byte(testHMACKey), body, time.Now()))
	}))
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
	code, out := post(t, hs.URL+"/gate/open", payload("podinfo", "other", nil))
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(out["error"]).To(ContainSubstring(`may not act on namespace "other"`))

	r, _ := http.NewRequest(http.MethodPost, hs.URL+"/gate/open", bytes.NewReader(payload("podinfo", "other", nil)))
	r.Header.Set("Authorization", "Bearer "+testToken)
	code, _ = do(t, r)
	g.Expect(code).To(Equal(http.StatusAccepted))

	r, _ = http.NewRequest(http.MethodPost, hs.URL+"/gate/open", bytes.NewReader(payload("podinfo", "kube-system", nil)))
	r.Header.Set("Authorization", "Bearer "+testToken)
	code, _ = do(t, r)
	g.Expect(code).To(Equal(http.StatusForbidden))
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
`), 0o600)).To(Succeed())
	f, err := LoadAuthFile(good)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.Clients).To(HaveLen(2))
	g.Expect(f.Clients[0].AllowsNamespace("anything")).To(BeTrue())
	g.Expect(f.Clients[1].AllowsNamespace("prod")).To(BeFalse())

	for name, content := range map[string]string{
		"empty":       "clients: []",
		"no-secret":   "clients: [{name: a, namespaces: [x]}]",
		"no-ns":       "clients: [{name: a, hmacKey: k}]",
		"short-token": "clients: [{name: a, token: abc, namespaces: [x]}]",
		"unknown-key": "clients: [{name: a, hmacKey: k, namespaces: [x], namespace: y}]",
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
