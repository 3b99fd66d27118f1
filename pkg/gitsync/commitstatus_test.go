package gitsync_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const statusToken = "ghp_commitStatusT0ken"

// postedStatus is one commit status a fake GitHub received, with what the
// cluster held when it arrived.
type postedStatus struct {
	Path, Auth                  string
	State, Context, Description string
	Recorded                    *sluicev1beta1.GitSyncCommitStatusRecord
	SettingsExisted             bool
}

// fakeGitHub records the statuses posted to it (POST
// /repos/{owner}/{repo}/statuses/{sha}) and answers code.
type fakeGitHub struct {
	mu     sync.Mutex
	posted []postedStatus
	srv    *httptest.Server
}

func newFakeGitHub(t *testing.T, ns, gitsync string, code int) *fakeGitHub {
	f := &fakeGitHub{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body struct{ State, Context, Description string }
		_ = json.Unmarshal(raw, &body)
		p := postedStatus{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), State: body.State, Context: body.Context, Description: body.Description}
		// What the API server holds when the status arrives: the record
		// must be written before the post.
		ctx := context.Background()
		gs := &sluicev1beta1.GitSync{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: gitsync}, gs); err == nil {
			p.Recorded = gs.Status.CommitStatus
		}
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
		p.SettingsExisted = !apierrors.IsNotFound(err)
		f.mu.Lock()
		f.posted = append(f.posted, p)
		f.mu.Unlock()
		w.WriteHeader(code)
		if code >= 400 {
			_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":1}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) statuses() []postedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]postedStatus(nil), f.posted...)
}

func commitStatusSecret(t *testing.T, ns string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github-token"}, StringData: map[string]string{"token": statusToken}}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// TestGitSync_CommitStatus: a new revision is posted pending (after the
// status write that records it, before it is applied) then success; a
// broken commit pending then failure with the reason; a resync posts
// nothing again.
func TestGitSync_CommitStatus(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	commitStatusSecret(t, ns)
	gh := newFakeGitHub(t, ns, "cs", http.StatusCreated)
	r := newGitServer(t, "", "").newRepo(t, "commitstatus")
	sha := r.write("initial", map[string]string{"deploy/config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "cs", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Path = "deploy"
		gs.Spec.CommitStatus = &sluicev1beta1.GitSyncCommitStatus{
			Provider: sluicev1beta1.CommitStatusGitHub, Address: gh.srv.URL, Repository: "acme/app",
			SecretRef: sluicev1beta1.GitSyncCommitStatusSecretRef{Name: "github-token"},
		}
	})
	wantContext := "sluice/gitsync/" + ns + "/cs"
	g.Eventually(func(g Gomega) {
		g.Expect(gh.statuses()).To(HaveLen(2))
	}, wait).Should(Succeed())
	// The one-second interval resyncs the same revision: nothing more is posted.
	g.Consistently(func(g Gomega) { g.Expect(gh.statuses()).To(HaveLen(2)) }, 3*time.Second).Should(Succeed())
	st := gh.statuses()
	for _, p := range st {
		g.Expect(p.Path).To(Equal("/repos/acme/app/statuses/" + sha))
		g.Expect(p.Auth).To(Equal("Bearer " + statusToken))
		g.Expect(p.Context).To(Equal(wantContext))
	}
	g.Expect(st[0].State).To(Equal("pending"))
	g.Expect(st[0].Recorded).To(Equal(&sluicev1beta1.GitSyncCommitStatusRecord{SHA: sha, State: "pending"}))
	g.Expect(st[0].SettingsExisted).To(BeFalse(), "pending must come before the apply")
	g.Expect(st[1].State).To(Equal("success"))
	g.Expect(st[1].Recorded).To(Equal(&sluicev1beta1.GitSyncCommitStatusRecord{SHA: sha, State: "success"}))
	g.Expect(st[1].SettingsExisted).To(BeTrue())

	// A broken commit: pending, then failure with the reason.
	bad := r.write("broken", map[string]string{"deploy/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"})
	g.Eventually(func(g Gomega) { g.Expect(gh.statuses()).To(HaveLen(4)) }, wait).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(gh.statuses()).To(HaveLen(4)) }, 3*time.Second).Should(Succeed())
	st = gh.statuses()
	g.Expect(st[2].Path).To(Equal("/repos/acme/app/statuses/" + bad))
	g.Expect(st[2].State).To(Equal("pending"))
	g.Expect(st[3].Path).To(Equal("/repos/acme/app/statuses/" + bad))
	g.Expect(st[3].State).To(Equal("failure"))
	g.Expect(st[3].Description).To(HavePrefix("BuildFailed: "))
	g.Expect(st[3].Description).To(ContainSubstring("broken.yaml"))
	g.Expect(len(st[3].Description)).To(BeNumerically("<=", 140))
	g.Expect(getGitSync(g, ns, "cs").Status.CommitStatus).To(Equal(&sluicev1beta1.GitSyncCommitStatusRecord{SHA: bad, State: "failure"}))

	// The fix: pending then success on the new commit.
	fixed := r.remove("fix", "deploy/broken.yaml")
	g.Eventually(func(g Gomega) { g.Expect(gh.statuses()).To(HaveLen(6)) }, wait).Should(Succeed())
	st = gh.statuses()
	g.Expect([]string{st[4].State, st[5].State}).To(Equal([]string{"pending", "success"}))
	g.Expect(st[5].Path).To(Equal("/repos/acme/app/statuses/" + fixed))
}

// TestGitSync_CommitStatusRefused: a host that refuses the token is a
// Warning event with its reason, without the token, and the sync succeeds.
func TestGitSync_CommitStatusRefused(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	commitStatusSecret(t, ns)
	gh := newFakeGitHub(t, ns, "refused", http.StatusUnauthorized)
	r := newGitServer(t, "", "").newRepo(t, "refused")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "refused", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.CommitStatus = &sluicev1beta1.GitSyncCommitStatus{
			Provider: sluicev1beta1.CommitStatusGitHub, Address: gh.srv.URL, Repository: "acme/app",
			SecretRef: sluicev1beta1.GitSyncCommitStatusSecretRef{Name: "github-token"}, ContextName: "prod/app",
		}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "refused")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		var evs eventsv1.EventList
		g.Expect(env.Client.List(context.Background(), &evs, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range evs.Items {
			if e.Reason == "CommitStatusFailed" && e.Regarding.Name == "refused" {
				g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(HaveLen(2)) // pending and success, each refused once
		for _, n := range notes {
			g.Expect(n).To(ContainSubstring("401"))
			g.Expect(n).To(ContainSubstring("Bad credentials"))
			g.Expect(n).NotTo(ContainSubstring(statusToken))
		}
	}, wait).Should(Succeed())
	// Not retried: one request per state.
	st := gh.statuses()
	g.Expect(st).To(HaveLen(2))
	g.Expect(st[0].Context).To(Equal("prod/app"))
	g.Expect(strings.Contains(managerLog.String(), statusToken)).To(BeFalse())
}

// TestGitSync_CommitStatusSecretMissing: a missing Secret is an event, not
// a failed sync.
func TestGitSync_CommitStatusSecretMissing(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "nosecret")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "nosecret", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.CommitStatus = &sluicev1beta1.GitSyncCommitStatus{
			Provider: sluicev1beta1.CommitStatusGitea, Address: "http://127.0.0.1:1",
			SecretRef: sluicev1beta1.GitSyncCommitStatusSecretRef{Name: "absent"},
		}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "nosecret")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		var evs eventsv1.EventList
		g.Expect(env.Client.List(context.Background(), &evs, client.InNamespace(ns))).To(Succeed())
		found := false
		for _, e := range evs.Items {
			found = found || (e.Reason == "CommitStatusFailed" && strings.Contains(e.Note, "absent was not found"))
		}
		g.Expect(found).To(BeTrue())
	}, wait).Should(Succeed())
}
