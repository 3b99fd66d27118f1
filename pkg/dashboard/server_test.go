package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// grantRead lets user get, list and watch Canaries and GitSyncs in ns only.
func grantRead(t *testing.T, ns, user string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sluice-read"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{sluicev1beta1.GroupVersion.Group},
			Resources: []string{"canaries", "gitsyncs"}, Verbs: []string{"get", "list", "watch"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sluice-read-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
}

// session loads the page (which sets the session cookie) and returns the
// CSRF token the page would use.
func session(t *testing.T, ts *httptest.Server) (*http.Client, string) {
	t.Helper()
	jar, err := newJar()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: ts.Client().Transport, Jar: jar}
	resp, err := c.Get(ts.URL + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		CSRFToken string `json:"csrfToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.CSRFToken == "" {
		t.Fatalf("session: %v %+v", err, s)
	}
	return c, s.CSRFToken
}

type reply struct {
	code   int
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Msg    string `json:"message"`
}

func post(t *testing.T, c *http.Client, url string, headers map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{code: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(body, &r)
	return r
}

func get(t *testing.T, c *http.Client, url string) reply {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{code: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(body, &r)
	return r
}

var progressing = sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10}

func TestDashboardRBACLimitedUserSeesOnlyAllowedNamespaces(t *testing.T) {
	g := NewWithT(t)
	allowed, other := namespace(t), namespace(t)
	newCanary(t, allowed, "mine", progressing)
	newCanary(t, other, "theirs", progressing)
	grantRead(t, allowed, "alice")
	ts := startServer(t, userClient(t, "alice"))

	// Her namespace: the snapshot has her Canary and only it.
	events := stream(t, ts, allowed)
	ev := next(t, events, func(e sse) bool { return e.Name == "upsert" && e.Data["kind"] == "Canary" })
	g.Expect(ev.Data).To(HaveKeyWithValue("name", "mine"))
	next(t, events, func(e sse) bool { return e.Name == "synced" && e.Data["kind"] == "Canary" })

	// Another namespace, and all namespaces: refused and said so, not an empty list.
	for _, ns := range []string{other, ""} {
		ev = next(t, stream(t, ts, ns), func(e sse) bool {
			g.Expect(e.Name).NotTo(Equal("upsert"), "alice must see no object outside %s", allowed)
			return e.Name == "denied" && e.Data["kind"] == "Canary"
		})
		g.Expect(ev.Data["error"]).To(And(HavePrefix("not allowed: "), ContainSubstring(`User "alice" cannot list resource "canaries"`)))
	}

	c, token := session(t, ts)
	r := get(t, c, ts.URL+"/api/canaries/"+other+"/theirs")
	g.Expect(r.code).To(Equal(http.StatusForbidden))
	g.Expect(r.Reason).To(Equal("forbidden"))
	g.Expect(get(t, c, ts.URL+"/api/canaries/"+allowed+"/mine").code).To(Equal(http.StatusOK))

	// Read-only: she cannot act, even on her own namespace's Canary.
	for _, ns := range []string{allowed, other} {
		name := map[string]string{allowed: "mine", other: "theirs"}[ns]
		r = post(t, c, ts.URL+"/api/canaries/"+ns+"/"+name+"/promote", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token})
		g.Expect(r.code).To(Equal(http.StatusForbidden), r.Error)
		g.Expect(r.Reason).To(Equal("forbidden"))
		g.Expect(getCanary(t, ns, name).Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))
	}
}

func TestDashboardActionsNeedCSRFTokenAndSameOrigin(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	ts := startServer(t, userClient(t, ""))
	c, token := session(t, ts)
	url := ts.URL + "/api/canaries/" + ns + "/podinfo/promote"

	for name, h := range map[string]map[string]string{
		"no token":           {"Origin": ts.URL},
		"wrong token":        {"Origin": ts.URL, "X-Sluice-CSRF": token + "x"},
		"no origin":          {"X-Sluice-CSRF": token},
		"foreign origin":     {"Origin": "http://evil.example.com", "X-Sluice-CSRF": token},
		"cross-site fetch":   {"Origin": ts.URL, "X-Sluice-CSRF": token, "Sec-Fetch-Site": "cross-site"},
		"other port on host": {"Origin": "http://127.0.0.1:1", "X-Sluice-CSRF": token},
	} {
		r := post(t, c, url, h)
		g.Expect(r.code).To(Equal(http.StatusForbidden), name)
		g.Expect(r.Reason).To(Equal("csrf"), name)
	}
	// A token from another session is refused too.
	other, _ := session(t, ts)
	g.Expect(post(t, other, url, map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token}).Reason).To(Equal("csrf"))
	g.Expect(getCanary(t, ns, "podinfo").Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))

	r := post(t, c, url, map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token, "Sec-Fetch-Site": "same-origin"})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	g.Expect(r.Msg).To(ContainSubstring("promote requested"))
	g.Expect(getCanary(t, ns, "podinfo").Annotations).To(HaveKey(sluicev1beta1.PromoteAnnotation))

	// The phase rules of kubectl sluice apply: nothing failed, so no retry.
	r = post(t, c, ts.URL+"/api/canaries/"+ns+"/podinfo/retry", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token})
	g.Expect(r.code).To(Equal(http.StatusConflict))
	g.Expect(r.Error).To(ContainSubstring("no failed revision to retry"))
	r = post(t, c, ts.URL+"/api/canaries/"+ns+"/podinfo/delete", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token})
	g.Expect(r.code).To(Equal(http.StatusNotFound))

	r = post(t, c, ts.URL+"/api/canaries/"+ns+"/podinfo/suspend", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	g.Expect(getCanary(t, ns, "podinfo").Spec.Suspend).To(BeTrue())
}

func TestDashboardRefusesForeignHostsAndSetsSecurityHeaders(t *testing.T) {
	g := NewWithT(t)
	ts := startServer(t, userClient(t, ""))
	for host, want := range map[string]int{
		"evil.example.com":       http.StatusMisdirectedRequest,
		"127.0.0.1.evil.example": http.StatusMisdirectedRequest,
		"localhost.evil.example": http.StatusMisdirectedRequest,
		"10.0.0.1:3100":          http.StatusMisdirectedRequest,
		"localhost:3100":         http.StatusOK,
		"127.0.0.1":              http.StatusOK,
		"[::1]:3100":             http.StatusOK,
	} {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Host = host
		resp, err := ts.Client().Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(want), host)
	}
	resp, err := ts.Client().Get(ts.URL + "/")
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	g.Expect(csp).To(And(ContainSubstring("script-src 'self'"), ContainSubstring("frame-ancestors 'none'")))
	g.Expect(csp).NotTo(ContainSubstring("unsafe-inline"))
	g.Expect(resp.Header.Get("X-Content-Type-Options")).To(Equal("nosniff"))
	g.Expect(resp.Header.Get("Referrer-Policy")).To(Equal("no-referrer"))
	g.Expect(string(body)).To(ContainSubstring(`<script type="module" src="/assets/app.js">`))
	g.Expect(string(body)).NotTo(ContainSubstring("<style"), "inline styles would need unsafe-inline")
	cookie := resp.Header.Get("Set-Cookie")
	g.Expect(cookie).To(And(ContainSubstring("HttpOnly"), ContainSubstring("SameSite=Strict")))

	resp, err = ts.Client().Get(ts.URL + "/assets/app.js")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(resp.Header.Get("Content-Type")).To(ContainSubstring("javascript"))
}

func TestDashboardStreamsStatusChanges(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	c := newCanary(t, ns, "podinfo", progressing)
	ts := startServer(t, userClient(t, ""))
	events := stream(t, ts, ns)
	next(t, events, func(e sse) bool { return e.Name == "synced" && e.Data["kind"] == "Canary" })

	setStatus(t, c, sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 30, Revision: "abc123"})
	ev := next(t, events, func(e sse) bool {
		return e.Name == "upsert" && e.Data["name"] == "podinfo" && e.Data["weight"] == float64(30)
	})
	g.Expect(ev.Data).To(HaveKeyWithValue("revision", "abc123"))
	g.Expect(ev.Data).NotTo(HaveKey("sessionAffinityCookie"))

	g.Expect(env.Client.Delete(context.Background(), c)).To(Succeed())
	next(t, events, func(e sse) bool { return e.Name == "delete" && e.Data["name"] == "podinfo" })
}

func TestDashboardGitSyncDetailHidesURLCredentials(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec:       sluicev1beta1.GitSyncSpec{URL: "https://deploy:s3cr3t@git.example.com/apps.git", Path: "deploy"},
	}
	g.Expect(env.Client.Create(context.Background(), gs)).To(Succeed())
	ts := startServer(t, userClient(t, ""))
	c, token := session(t, ts)
	resp, err := c.Get(ts.URL + "/api/gitsyncs/" + ns + "/apps")
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(string(body)).NotTo(ContainSubstring("s3cr3t"))
	g.Expect(string(body)).To(ContainSubstring("https://git.example.com/apps.git"))

	r := post(t, c, ts.URL+"/api/gitsyncs/"+ns+"/apps/sync", map[string]string{"Origin": ts.URL, "X-Sluice-CSRF": token})
	g.Expect(r.code).To(Equal(http.StatusOK), r.Error)
	g.Expect(env.Client.Get(context.Background(), clientKey(gs), gs)).To(Succeed())
	g.Expect(gs.Annotations).To(HaveKey(sluicev1beta1.GitSyncSyncRequestedAnnotation))
	g.Expect(strings.Contains(r.Msg, "sync requested")).To(BeTrue())
}

// TestDashboardTwoOnOneHostKeepTheirSessions: browsers send a host's
// cookies to every port, so a second dashboard on 127.0.0.1 (another
// cluster, another terminal) must not replace the first one's session: the
// first page's actions keep working with the token it already holds.
func TestDashboardTwoOnOneHostKeepTheirSessions(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newCanary(t, ns, "podinfo", progressing)
	first := startServer(t, userClient(t, ""))
	second := startServer(t, userClient(t, ""))
	c, token := session(t, first)
	// The same browser (cookie jar) opens the second dashboard.
	resp, err := c.Get(second.URL + "/api/session")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()

	r := post(t, c, first.URL+"/api/canaries/"+ns+"/podinfo/promote", map[string]string{"Origin": first.URL, "X-Sluice-CSRF": token})
	g.Expect(r.code).To(Equal(http.StatusOK), "the first dashboard lost its session to the second: %s %s", r.Reason, r.Error)
}
