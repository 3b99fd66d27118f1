package loadtester

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(clientgoscheme.Scheme)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

const (
	testHMACKey = "hmac-key-for-tests"
	testToken   = "bearer-token-for-tests-0123456789"
)

// testClients: "sluice" signs (HMAC) with the default scope, check, in
// namespace "test"; "bot" (a person's token) may check and operate in "test"
// and "other", and check in "ro".
func testClients() *AuthFile {
	return &AuthFile{Clients: []Client{
		{Name: "sluice", HMACKey: testHMACKey, Namespaces: []string{"test"}},
		{Name: "bot", Token: testToken, Grants: []Grant{
			{Namespaces: []string{"test", "other"}, Scopes: []Scope{ScopeCheck, ScopeOperate}},
			{Namespaces: []string{"ro"}},
		}},
	}}
}

// testAuth authenticates testClients with an in-memory replay cache.
func testAuth(t *testing.T) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(testClients(), time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newServer starts a load tester over HTTP with cfg (Auth and Log filled in).
func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Auth == nil {
		cfg.Auth = testAuth(t)
	}
	cfg.Log = testr.New(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

// post sends body to url, signed with the HMAC key as Sluice does, and
// returns the status and the decoded JSON reply.
func post(t *testing.T, url string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err := webhooks.SignRequest(req, []byte(testHMACKey), body, time.Now()); err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// operate sends body to url with the token of "bot", which may operate gates.
func operate(t *testing.T, url string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	if len(out) == 0 {
		out["raw"] = string(data)
	}
	return resp.StatusCode, out
}

func payload(name, ns string, md map[string]string) []byte {
	b, _ := json.Marshal(webhooks.Payload{Name: name, Namespace: ns, Phase: "Progressing", Checksum: "abc", Revision: "abc", Metadata: md, Type: "rollout"})
	return b
}

func TestHealthzAndMetricsNeedNoAuth(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(hs.URL + p)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), p)
	}
}
