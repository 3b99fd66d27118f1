package dashboard_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/dashboard"
)

// grantTo binds a Role with verbs on Canaries and GitSyncs in ns to a subject.
func grantTo(t *testing.T, ns string, subject rbacv1.Subject, verbs ...string) {
	t.Helper()
	ctx := context.Background()
	name := "sluice-" + strings.Join(verbs, "-") + "-" + strings.NewReplacer(":", "-", "@", "-").Replace(subject.Name)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{sluicev1beta1.GroupVersion.Group},
			Resources: []string{"canaries", "gitsyncs"}, Verbs: verbs}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// getWith sends a GET with an optional bearer token and returns the reply and body.
func getWith(t *testing.T, c *http.Client, url, token string) (reply, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{code: resp.StatusCode}
	_ = jsonUnmarshal(body, &r)
	return r, string(body)
}

func TestInCluster_NoTokenIs401WithLoginPage(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	ts := startInCluster(t, nil)

	resp, err := ts.Client().Get(ts.URL + "/")
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(resp.Header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
	g.Expect(resp.Header.Get("Content-Security-Policy")).To(ContainSubstring("script-src 'self'"))
	g.Expect(string(body)).To(And(ContainSubstring("kubectl create token"), ContainSubstring(`src="/assets/login.js"`)))
	g.Expect(string(body)).NotTo(ContainSubstring("app.js"))

	for _, path := range []string{"/api/session", "/api/events?namespace=" + ns, "/api/canaries/" + ns + "/podinfo"} {
		r, body := getWith(t, ts.Client(), ts.URL+path, "")
		g.Expect(r.code).To(Equal(http.StatusUnauthorized), path)
		g.Expect(r.Reason).To(Equal("unauthenticated"), path)
		g.Expect(body).NotTo(ContainSubstring("podinfo"), path)
	}
	r := post(t, ts.Client(), ts.URL+"/api/canaries/"+ns+"/podinfo/promote", map[string]string{"Origin": ts.URL})
	g.Expect(r.code).To(Equal(http.StatusUnauthorized))
	g.Expect(getCanary(t, ns, "podinfo").Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))

	// The login page's own files are served without a token: they hold no data.
	for _, path := range []string{"/assets/login.js", "/assets/login.css", "/assets/style.css"} {
		r, _ := getWith(t, ts.Client(), ts.URL+path, "")
		g.Expect(r.code).To(Equal(http.StatusOK), path)
	}
}

// A ServiceAccount that may read Canaries in namespace a but nothing in b
// sees only a's, in the detail API and on the live stream, and can act on
// neither; another with patch rights in a promotes there.
func TestInCluster_ServiceAccountSeesAndDoesOnlyWhatItsRBACAllows(t *testing.T) {
	g := NewWithT(t)
	a, b := namespace(t), namespace(t)
	newCanary(t, a, "mine", progressing)
	newCanary(t, b, "theirs", progressing)
	readerToken := saToken(t, a, "reader")
	grantTo(t, a, userSubject(saUser(a, "reader")), "get", "list", "watch")
	writerToken := saToken(t, a, "writer")
	grantTo(t, a, userSubject(saUser(a, "writer")), "get", "list", "watch", "patch")
	ts := startInCluster(t, nil)

	// The Authorization header works on its own (API clients).
	r, _ := getWith(t, ts.Client(), ts.URL+"/api/canaries/"+a+"/mine", readerToken)
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	r, _ = getWith(t, ts.Client(), ts.URL+"/api/canaries/"+b+"/theirs", readerToken)
	g.Expect(r.code).To(Equal(http.StatusForbidden))
	g.Expect(r.Error).To(ContainSubstring(`User "` + saUser(a, "reader") + `" cannot get resource "canaries"`))

	// The browser: log in, then the cookie carries the token.
	c, csrf := login(t, ts, readerToken)
	resp, err := c.Get(ts.URL + "/")
	g.Expect(err).NotTo(HaveOccurred())
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(string(page)).To(ContainSubstring("/assets/app.js"))
	g.Expect(resp.Header.Values("Set-Cookie")).NotTo(ContainElement(ContainSubstring(readerToken)), "the token is set once, at login")

	events := streamAs(t, c, ts, a)
	ev := next(t, events, func(e sse) bool { return e.Name == "upsert" && e.Data["kind"] == "Canary" })
	g.Expect(ev.Data).To(HaveKeyWithValue("name", "mine"))
	next(t, events, func(e sse) bool { return e.Name == "synced" && e.Data["kind"] == "Canary" })
	for _, ns := range []string{b, ""} {
		ev = next(t, streamAs(t, c, ts, ns), func(e sse) bool {
			g.Expect(e.Name).NotTo(Equal("upsert"), "the reader must see no object outside %s", a)
			return e.Name == "denied" && e.Data["kind"] == "Canary"
		})
		g.Expect(ev.Data["error"]).To(ContainSubstring(`User "` + saUser(a, "reader") + `" cannot list resource "canaries"`))
	}

	// Read-only: no promote, in a or b.
	for ns, name := range map[string]string{a: "mine", b: "theirs"} {
		r = post(t, c, ts.URL+"/api/canaries/"+ns+"/"+name+"/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": csrf})
		g.Expect(r.code).To(Equal(http.StatusForbidden), r.Error)
		g.Expect(r.Reason).To(Equal("forbidden"))
		g.Expect(getCanary(t, ns, name).Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))
	}

	// The writer promotes in a (as itself: the reader's stream, still open,
	// sees the change), and is refused in b.
	w, wcsrf := login(t, ts, writerToken)
	r = post(t, w, ts.URL+"/api/canaries/"+b+"/theirs/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": wcsrf})
	g.Expect(r.code).To(Equal(http.StatusForbidden))
	r = post(t, w, ts.URL+"/api/canaries/"+a+"/mine/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": wcsrf})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	g.Expect(getCanary(t, a, "mine").Annotations).To(HaveKey(sluicev1beta1.PromoteAnnotation))
	next(t, events, func(e sse) bool { return e.Name == "upsert" && e.Data["name"] == "mine" })

	// Logging out forgets the token: the next request is 401.
	g.Expect(post(t, c, ts.URL+"/api/logout", map[string]string{"Origin": ts.URL}).code).To(Equal(http.StatusNoContent))
	r, _ = getWith(t, c, ts.URL+"/api/session", "")
	g.Expect(r.code).To(Equal(http.StatusUnauthorized))
}

func TestInCluster_ForgedAndWrongAudienceTokensAreRefused(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	grantTo(t, ns, userSubject(saUser(ns, "reader")), "get", "list", "watch")
	good := saToken(t, ns, "reader")
	ts := startInCluster(t, nil)
	url := ts.URL + "/api/canaries/" + ns + "/podinfo"

	// A token whose signature was changed, a made-up one, a JWT signed by
	// another key with the same claims.
	parts := strings.Split(good, ".")
	forgedSig := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	iss := startIssuer(t)
	selfSigned := iss.idToken(t, other, map[string]any{"iss": dashboard.TokenIssuer(good), "sub": saUser(ns, "reader")})
	for name, tok := range map[string]string{"changed signature": forgedSig, "made up": "not-a-token", "another key": selfSigned} {
		r, body := getWith(t, ts.Client(), url, tok)
		g.Expect(r.code).To(Equal(http.StatusUnauthorized), name)
		g.Expect(body).NotTo(ContainSubstring(tok), "the token is never echoed")
	}
	// A cookie with a bad token is refused and removed.
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.AddCookie(&http.Cookie{Name: "sluice_dashboard_token", Value: forgedSig})
	resp, err := ts.Client().Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(resp.Header.Get("Set-Cookie")).To(And(HavePrefix("sluice_dashboard_token=;"), ContainSubstring("Max-Age=0")))

	// The good token works; with an audience configured it no longer does,
	// and a token minted for that audience does.
	r, _ := getWith(t, ts.Client(), url, good)
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	aud := startInCluster(t, func(o *dashboard.InClusterOptions) {
		o.Authenticator.(*dashboard.Authenticators).TokenReview.(*dashboard.TokenReviewAuthenticator).Audiences = []string{"sluice-dashboard"}
	})
	r, _ = getWith(t, aud.Client(), aud.URL+"/api/canaries/"+ns+"/podinfo", good)
	g.Expect(r.code).To(Equal(http.StatusUnauthorized))
	r, _ = getWith(t, aud.Client(), aud.URL+"/api/canaries/"+ns+"/podinfo", saToken(t, ns, "reader", "sluice-dashboard"))
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
}

func TestInCluster_OIDCTokensOfTheConfiguredIssuer(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	iss := startIssuer(t)
	// RBAC names the prefixed identities: a user and a group.
	grantTo(t, ns, userSubject("oidc:alice@example.com"), "get", "list", "watch")
	grantTo(t, ns, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "oidc:releasers"}, "get", "list", "watch", "patch")
	ts := startInCluster(t, func(o *dashboard.InClusterOptions) {
		oidc, err := dashboard.NewOIDCAuthenticator(dashboard.OIDCConfig{IssuerURL: iss.URL, ClientID: "sluice-dashboard",
			UsernameClaim: "email", UsernamePrefix: "oidc:", GroupsClaim: "groups", GroupsPrefix: "oidc:"})
		g.Expect(err).NotTo(HaveOccurred())
		o.Authenticator.(*dashboard.Authenticators).OIDC = oidc
	})
	url := ts.URL + "/api/canaries/" + ns + "/podinfo"

	alice := iss.idToken(t, nil, map[string]any{"sub": "1", "email": "alice@example.com", "email_verified": true})
	r, _ := getWith(t, ts.Client(), url, alice)
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	c, csrf := login(t, ts, alice)
	r = post(t, c, url+"/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": csrf})
	g.Expect(r.code).To(Equal(http.StatusForbidden), "alice may only read")
	g.Expect(r.Error).To(ContainSubstring(`User "oidc:alice@example.com" cannot patch`))

	// Bob acts through his group; a groups claim cannot name system:masters.
	bob := iss.idToken(t, nil, map[string]any{"sub": "2", "email": "bob@example.com", "groups": []string{"releasers", "system:masters"}})
	c, csrf = login(t, ts, bob)
	r = post(t, c, url+"/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": csrf})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	g.Expect(getCanary(t, ns, "podinfo").Annotations).To(HaveKey(sluicev1beta1.PromoteAnnotation))
	r, _ = getWith(t, ts.Client(), ts.URL+"/api/canaries/"+namespace(t)+"/none", bob)
	g.Expect(r.code).To(Equal(http.StatusForbidden), "system:masters was prefixed: no cluster-wide rights")

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	for name, tc := range map[string]struct {
		token string
		want  string
	}{
		"wrong audience": {iss.idToken(t, nil, map[string]any{"email": "alice@example.com", "aud": "another-app"}), "audience"},
		"expired": {iss.idToken(t, nil, map[string]any{"email": "alice@example.com",
			"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}), "expired"},
		"another key":    {iss.idToken(t, other, map[string]any{"email": "alice@example.com"}), "signature"},
		"wrong issuer":   {iss.idToken(t, nil, map[string]any{"email": "alice@example.com", "iss": "https://evil.example.com"}), "Kubernetes API server did not authenticate"},
		"unverified":     {iss.idToken(t, nil, map[string]any{"email": "alice@example.com", "email_verified": false}), "not verified"},
		"no email claim": {iss.idToken(t, nil, map[string]any{"sub": "3"}), `no "email" claim`},
	} {
		r, _ := getWith(t, ts.Client(), url, tc.token)
		g.Expect(r.code).To(Equal(http.StatusUnauthorized), name)
		g.Expect(r.Error).To(ContainSubstring(tc.want), name)
	}
}

// A live stream ends once its token stops being valid (here: its
// ServiceAccount is deleted), rather than relaying changes to a caller the
// cluster no longer knows.
func TestInCluster_StreamEndsWhenTheTokenIsRevoked(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	grantTo(t, ns, userSubject(saUser(ns, "leaver")), "get", "list", "watch")
	token := saToken(t, ns, "leaver")
	ts := startInCluster(t, func(o *dashboard.InClusterOptions) {
		o.RecheckEvery = 200 * time.Millisecond
		o.Authenticator.(*dashboard.Authenticators).CacheTTL = time.Millisecond
	})
	c, _ := login(t, ts, token)
	events := streamAs(t, c, ts, ns)
	next(t, events, func(e sse) bool { return e.Name == "synced" && e.Data["kind"] == "Canary" })

	g.Expect(env.Client.Delete(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leaver"}})).To(Succeed())
	g.Eventually(func() bool {
		select {
		case _, open := <-events:
			return !open
		default:
			return false
		}
	}, 20*time.Second, 50*time.Millisecond).Should(BeTrue(), "the stream must end")
	r, _ := getWith(t, c, ts.URL+"/api/session", "")
	g.Expect(r.code).To(Equal(http.StatusUnauthorized))
}

func TestInCluster_FailedAuthenticationsAreRateLimited(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	grantTo(t, ns, userSubject(saUser(ns, "reader")), "get", "list", "watch")
	good := saToken(t, ns, "reader")
	ts := startInCluster(t, func(o *dashboard.InClusterOptions) {
		o.FailedAuthBurst, o.FailedAuthEvery = 3, time.Hour
	})
	g.Expect(getWithCode(t, ts.URL+"/api/session", good, ts.Client())).To(Equal(http.StatusOK))
	for range 3 {
		g.Expect(getWithCode(t, ts.URL+"/api/session", "wrong", ts.Client())).To(Equal(http.StatusUnauthorized))
	}
	// The budget is spent: even a good token waits, and the answer says so.
	r, _ := getWith(t, ts.Client(), ts.URL+"/api/session", good)
	g.Expect(r.code).To(Equal(http.StatusTooManyRequests))
	g.Expect(r.Error).To(ContainSubstring("too many failed authentications"))
	// Successful requests do not spend it.
	fresh := startInCluster(t, func(o *dashboard.InClusterOptions) { o.FailedAuthBurst, o.FailedAuthEvery = 1, time.Hour })
	for range 5 {
		g.Expect(getWithCode(t, fresh.URL+"/api/session", good, fresh.Client())).To(Equal(http.StatusOK))
	}
}

func getWithCode(t *testing.T, url, token string, c *http.Client) int {
	t.Helper()
	r, _ := getWith(t, c, url, token)
	return r.code
}

func TestInCluster_LoginNeedsSameOriginAndHostsAreChecked(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	token := saToken(t, ns, "reader")
	ts := startInCluster(t, func(o *dashboard.InClusterOptions) {
		o.AllowedHosts = []string{"sluice-dashboard.sluice-system.svc", "dash.example.com"}
	})
	for name, h := range map[string]map[string]string{
		"no origin":      {"Authorization": "Bearer " + token},
		"foreign origin": {"Authorization": "Bearer " + token, "Origin": "http://evil.example.com"},
		"cross-site":     {"Authorization": "Bearer " + token, "Origin": ts.URL, "Sec-Fetch-Site": "cross-site"},
	} {
		r := post(t, ts.Client(), ts.URL+"/api/login", h)
		g.Expect(r.code).To(Equal(http.StatusForbidden), name)
		g.Expect(r.Reason).To(Equal("csrf"), name)
	}
	// A good login: the cookie is HttpOnly, SameSite=Strict and Secure.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/login", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Origin", ts.URL)
	resp, err := ts.Client().Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(resp.Header.Get("Set-Cookie")).To(And(ContainSubstring("HttpOnly"), ContainSubstring("SameSite=Strict"), ContainSubstring("Secure")))
	// A token too long for a cookie is refused with the way out.
	r := post(t, ts.Client(), ts.URL+"/api/login", map[string]string{"Origin": ts.URL, "Authorization": "Bearer " + strings.Repeat("x", 5000)})
	g.Expect(r.code).To(Equal(http.StatusBadRequest))
	g.Expect(r.Error).To(ContainSubstring("Authorization header"))

	for host, want := range map[string]int{
		"evil.example.com":                         http.StatusMisdirectedRequest,
		"sluice-dashboard.sluice-system.svc:8443":  http.StatusOK,
		"dash.example.com":                         http.StatusOK,
		"dash.example.com.evil.example":            http.StatusMisdirectedRequest,
		"sluice-dashboard.sluice-system.svc.evil.": http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/session", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := ts.Client().Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(want), host)
	}
}

func TestInCluster_RequiresAuthenticatorAndConfig(t *testing.T) {
	g := NewWithT(t)
	_, err := dashboard.New(dashboard.Options{InCluster: &dashboard.InClusterOptions{}})
	g.Expect(err).To(MatchError(ContainSubstring("needs an authenticator")))
	_, err = dashboard.NewOIDCAuthenticator(dashboard.OIDCConfig{IssuerURL: "https://issuer.example.com"})
	g.Expect(err).To(MatchError(ContainSubstring("client ID")))
}
