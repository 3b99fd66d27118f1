package dashboard_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/cli"
	"github.com/sluice-cd/sluice/pkg/dashboard"
)

// saToken creates the ServiceAccount ns/name (if needed) and returns a token
// for it from the TokenRequest API, as `kubectl create token` does.
func saToken(t *testing.T, ns, name string, audiences ...string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600)}}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// saUser is the user name of a ServiceAccount.
func saUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// dashboardConfig is a client configuration that authenticates as a new
// ServiceAccount holding exactly the generated dashboard ClusterRole
// (config/rbac/generated/dashboard/role.yaml): the in-cluster dashboard's
// identity, with nothing added for the test.
func dashboardConfig(t *testing.T) *rest.Config {
	t.Helper()
	ctx := context.Background()
	ns := namespace(t)
	raw, err := os.ReadFile(filepath.Join(env.Root, "config", "rbac", "generated", "dashboard", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(string(raw), "---\n")), role); err != nil {
		t.Fatal(err)
	}
	role.Name = "sluice-dashboard-" + ns
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "sluice-dashboard"}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), binding)
		_ = env.Client.Delete(context.Background(), role)
	})
	return &rest.Config{
		Host:            env.Config.Host,
		BearerToken:     saToken(t, ns, "sluice-dashboard"),
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData},
	}
}

// startInCluster serves an in-cluster dashboard running as its own
// ServiceAccount, authenticating with TokenReview and, when oidc is set, OIDC.
func startInCluster(t *testing.T, mutate func(*dashboard.InClusterOptions)) *httptest.Server {
	t.Helper()
	return startInClusterIn(t, "", mutate)
}

// startInClusterIn is startInCluster with the overview starting in ns.
func startInClusterIn(t *testing.T, ns string, mutate func(*dashboard.InClusterOptions)) *httptest.Server {
	t.Helper()
	cfg := dashboardConfig(t)
	self, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	o := &dashboard.InClusterOptions{
		Authenticator: &dashboard.Authenticators{TokenReview: &dashboard.TokenReviewAuthenticator{Client: self}},
		Config:        cfg,
		ClientOptions: client.Options{Scheme: scheme},
	}
	if mutate != nil {
		mutate(o)
	}
	s, err := dashboard.New(dashboard.Options{InCluster: o, Act: cli.Act, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// login logs a browser-like client (with a cookie jar) in with the token,
// as the login page does, and returns it with its CSRF token.
func login(t *testing.T, ts *httptest.Server, token string) (*http.Client, string) {
	t.Helper()
	g := NewWithT(t)
	jar, err := newJar()
	g.Expect(err).NotTo(HaveOccurred())
	c := &http.Client{Transport: ts.Client().Transport, Jar: jar}
	r := post(t, c, ts.URL+"/api/login", map[string]string{"Origin": ts.URL, "Authorization": "Bearer " + token})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	resp, err := c.Get(ts.URL + "/api/session")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var s struct {
		CSRFToken string `json:"csrfToken"`
		User      string `json:"user"`
	}
	g.Expect(json.NewDecoder(resp.Body).Decode(&s)).To(Succeed())
	g.Expect(s.CSRFToken).NotTo(BeEmpty())
	return c, s.CSRFToken
}

// streamAs opens the event stream with a logged-in client.
func streamAs(t *testing.T, c *http.Client, ts *httptest.Server, ns string) <-chan sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/events?namespace="+ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: HTTP %d", resp.StatusCode)
	}
	out := make(chan sse, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			case line == "" && ev.Name != "":
				out <- ev
				ev = sse{}
			}
		}
	}()
	return out
}

// issuer is an in-process OIDC issuer: discovery and JWKS over HTTP, and ID
// tokens signed with its RSA key.
type issuer struct {
	*httptest.Server
	key *rsa.PrivateKey
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.URL, "jwks_uri": iss.URL + "/keys",
			"authorization_endpoint": iss.URL + "/auth", "token_endpoint": iss.URL + "/token",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "test", Algorithm: string(jose.RS256), Use: "sig"}}})
	})
	iss.Server = httptest.NewServer(mux)
	t.Cleanup(iss.Close)
	return iss
}

// idToken signs claims (iss, aud, exp and iat default to a valid token for
// audience "sluice-dashboard") with key, or the issuer's key when nil.
func (i *issuer) idToken(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	if key == nil {
		key = i.key
	}
	full := map[string]any{"iss": i.URL, "aud": "sluice-dashboard", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		full[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
