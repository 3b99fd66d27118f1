package main

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

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

const (
	csSHA   = "89abcdef0123456789abcdef0123456789abcdef"
	csToken = "ghp_canaryStatusT0ken"
)

type csRequest struct {
	Path, Auth, State, Context, Description string
}

// fakeStatusHost is a GitHub-like host that records the statuses posted
// to it and answers code.
type fakeStatusHost struct {
	mu   sync.Mutex
	got  []csRequest
	code int
	srv  *httptest.Server
}

func newFakeStatusHost(t *testing.T, code int) *fakeStatusHost {
	f := &fakeStatusHost{code: code}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b struct{ State, Context, Description string }
		_ = json.Unmarshal(raw, &b)
		f.mu.Lock()
		f.got = append(f.got, csRequest{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), State: b.State, Context: b.Context, Description: b.Description})
		f.mu.Unlock()
		w.WriteHeader(f.code)
		_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeStatusHost) requests() []csRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]csRequest(nil), f.got...)
}

// statusGitSync creates a GitSync with spec.commitStatus to host and an
// inventory that holds the Deployment web, and the token Secret.
func statusGitSync(t *testing.T, g Gomega, ns, name, address string, inventory ...string) {
	ctx := context.Background()
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-token"},
		StringData: map[string]string{"token": csToken}})).To(Succeed())
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"test": "commit-status"}},
		Spec: sluicev1beta1.GitSyncSpec{URL: "https://github.com/acme/app.git", Suspend: true, CommitStatus: &sluicev1beta1.GitSyncCommitStatus{
			Provider: sluicev1beta1.CommitStatusGitHub, Address: address,
			SecretRef: sluicev1beta1.GitSyncCommitStatusSecretRef{Name: name + "-token"},
		}},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())
	for _, n := range inventory {
		gs.Status.Inventory = append(gs.Status.Inventory, sluicev1beta1.GitSyncInventoryEntry{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: n})
	}
	g.Expect(env.Client.Status().Update(ctx, gs)).To(Succeed())
}

// releasedCanary is a Canary whose current release was started by a
// revision of GitSync gitsync (status.source, as the engine records it).
func releasedCanary(ns, name, gitsync string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}},
		Status: sluicev1beta1.CanaryStatus{
			Revision: "5d8f7c9b", CanaryWeight: 20,
			Source: &sluicev1beta1.ReleaseSource{GitSyncName: gitsync, GitSyncNamespace: ns, Revision: "main@sha1:" + csSHA, Release: "5d8f7c9b"},
		},
	}
}

func startCommitStatuses(t *testing.T, recorder events.EventRecorder) *commitStatuses {
	a := newCommitStatuses(env.Client, "prod", logr.Discard(), recorder, 2, 16)
	a.base = commitstatus.Config{Backoff: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Start(ctx) }()
	t.Cleanup(func() { cancel(); g := NewWithT(t); g.Expect(<-done).To(Succeed()) })
	return a
}

func TestCommitStatuses_FollowTheRelease(t *testing.T) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "canary-status")
	g.Expect(err).NotTo(HaveOccurred())
	host := newFakeStatusHost(t, http.StatusCreated)
	statusGitSync(t, g, ns, "apps", host.srv.URL, "web", "api")
	a := startCommitStatuses(t, nil)
	var as canary.Announcer = announcers{a}

	web := releasedCanary(ns, "web", "apps")
	as.Announce(web, canary.Event{Reason: "Progressing", Message: "New revision detected"}, canary.SeverityInfo, nil)
	web = web.DeepCopy()
	web.Status.CanaryWeight = 40
	as.(canary.StepAnnouncer).AnnounceStep(web, canary.Event{Reason: "WeightIncreased", Message: "Advance canary weight to 40%"})
	failed := []sluicev1beta1.CheckResult{{Name: "request-success-rate", Kind: "Metric", Outcome: "Failed", Value: ptr("91.2"), Message: "below 99"}}
	web = web.DeepCopy()
	web.Status.FailedChecks = 1
	as.Announce(web, canary.Event{Warning: true, Reason: "CheckFailed", Message: "check failed"}, canary.SeverityWarn, failed)
	as.Announce(web, canary.Event{Warning: true, Reason: "Failed", Message: "Canary failed"}, canary.SeverityError, failed)
	// Another release promoted.
	as.Announce(releasedCanary(ns, "api", "apps"), canary.Event{Reason: "Succeeded", Message: "Promotion completed"}, canary.SeverityInfo, nil)

	g.Eventually(host.requests, 10*time.Second).Should(HaveLen(5))
	var webReqs, apiReqs []csRequest
	for _, r := range host.requests() {
		g.Expect(r.Path).To(Equal("/repos/acme/app/statuses/" + csSHA))
		g.Expect(r.Auth).To(Equal("Bearer " + csToken))
		if strings.HasSuffix(r.Context, "/web") {
			webReqs = append(webReqs, r)
		} else {
			apiReqs = append(apiReqs, r)
		}
	}
	// One Canary's statuses arrive in order.
	g.Expect(webReqs).To(Equal([]csRequest{
		{Path: "/repos/acme/app/statuses/" + csSHA, Auth: "Bearer " + csToken, State: "pending", Context: "sluice/prod/canary/" + ns + "/web", Description: "Analysing at 20% canary weight"},
		{Path: "/repos/acme/app/statuses/" + csSHA, Auth: "Bearer " + csToken, State: "pending", Context: "sluice/prod/canary/" + ns + "/web", Description: "Analysing at 40% canary weight"},
		{Path: "/repos/acme/app/statuses/" + csSHA, Auth: "Bearer " + csToken, State: "pending", Context: "sluice/prod/canary/" + ns + "/web",
			Description: "Analysing at 40% canary weight, 1 failed checks: request-success-rate Failed (91.2): below 99"},
		{Path: "/repos/acme/app/statuses/" + csSHA, Auth: "Bearer " + csToken, State: "failure", Context: "sluice/prod/canary/" + ns + "/web",
			Description: "Rolled back: request-success-rate Failed (91.2): below 99"},
	}))
	g.Expect(apiReqs).To(HaveLen(1))
	g.Expect(apiReqs[0].State).To(Equal("success"))
	g.Expect(apiReqs[0].Context).To(Equal("sluice/prod/canary/" + ns + "/api"))
}

func TestCommitStatuses_OnlyForTheReleaseAGitSyncStarted(t *testing.T) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "canary-status")
	g.Expect(err).NotTo(HaveOccurred())
	host := newFakeStatusHost(t, http.StatusCreated)
	statusGitSync(t, g, ns, "apps", host.srv.URL, "web")
	a := startCommitStatuses(t, nil)

	// A source recorded for an earlier release.
	old := releasedCanary(ns, "web", "apps")
	old.Status.Source.Release = "0000aaaa"
	a.Announce(old, canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	// No source.
	none := releasedCanary(ns, "web", "apps")
	none.Status.Source = nil
	a.Announce(none, canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	// A target the GitSync does not apply: a forged source.
	a.Announce(releasedCanary(ns, "forged", "apps"), canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	// A GitSync that does not exist.
	a.Announce(releasedCanary(ns, "web", "absent"), canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	// Events that are not a release's progress.
	a.Announce(releasedCanary(ns, "web", "apps"), canary.Event{Reason: "RoutesRestored"}, canary.SeverityWarn, nil)
	a.Announce(releasedCanary(ns, "web", "apps"), canary.Event{Reason: "Initialized"}, canary.SeverityInfo, nil)
	// Then one that is: the host sees only it.
	a.Announce(releasedCanary(ns, "web", "apps"), canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	g.Eventually(host.requests, 10*time.Second).Should(HaveLen(1))
	g.Consistently(host.requests, time.Second).Should(HaveLen(1))
	g.Expect(host.requests()[0].State).To(Equal("success"))
}

func TestCommitStatuses_RefusedIsAnEventWithoutTheToken(t *testing.T) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "canary-status")
	g.Expect(err).NotTo(HaveOccurred())
	host := newFakeStatusHost(t, http.StatusUnauthorized)
	statusGitSync(t, g, ns, "apps", host.srv.URL, "web")
	rec := events.NewFakeRecorder(4)
	a := startCommitStatuses(t, rec)
	a.Announce(releasedCanary(ns, "web", "apps"), canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	var ev string
	g.Eventually(rec.Events, 10*time.Second).Should(Receive(&ev))
	g.Expect(ev).To(ContainSubstring("CommitStatusFailed"))
	g.Expect(ev).To(ContainSubstring("Bad credentials"))
	g.Expect(ev).NotTo(ContainSubstring(csToken))
	g.Expect(host.requests()).To(HaveLen(1)) // a 401 is not retried
}

func TestCommitStatuses_AnnounceNeverBlocks(t *testing.T) {
	g := NewWithT(t)
	// Not started: nothing drains the queue of one.
	a := newCommitStatuses(env.Client, "", logr.Discard(), nil, 1, 1)
	c := releasedCanary("default", "web", "apps")
	done := make(chan struct{})
	go func() {
		for range 10 {
			a.Announce(c, canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
		}
		close(done)
	}()
	g.Eventually(done, time.Second).Should(BeClosed())
}

// recordingAnnouncer records what it was announced.
type recordingAnnouncer struct{ got *[]string }

func (r recordingAnnouncer) Announce(_ *sluicev1beta1.Canary, e canary.Event, _ string, _ []sluicev1beta1.CheckResult) {
	*r.got = append(*r.got, e.Reason)
}

// recordingStepAnnouncer also records the steps.
type recordingStepAnnouncer struct {
	recordingAnnouncer
	steps *[]string
}

func (r recordingStepAnnouncer) AnnounceStep(_ *sluicev1beta1.Canary, e canary.Event) {
	*r.steps = append(*r.steps, e.Reason)
}

func TestAnnouncers_FanOutInOrder(t *testing.T) {
	g := NewWithT(t)
	var first, second, steps []string
	as := announcers{recordingAnnouncer{&first}, recordingStepAnnouncer{recordingAnnouncer{&second}, &steps}}
	as.Announce(&sluicev1beta1.Canary{}, canary.Event{Reason: "Succeeded"}, canary.SeverityInfo, nil)
	as.AnnounceStep(&sluicev1beta1.Canary{}, canary.Event{Reason: "WeightIncreased"})
	as.Announce(&sluicev1beta1.Canary{}, canary.Event{Reason: "Failed"}, canary.SeverityError, nil)
	g.Expect(first).To(Equal([]string{"Succeeded", "Failed"}))
	g.Expect(second).To(Equal([]string{"Succeeded", "Failed"}))
	g.Expect(steps).To(Equal([]string{"WeightIncreased"}))
}

func ptr[T any](v T) *T { return &v }
