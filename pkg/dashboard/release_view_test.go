package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// getJSON reads an API reply into v and returns the status code.
func getJSON(t *testing.T, c *http.Client, url string, v any) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
	return resp.StatusCode
}

// grant lets user do verbs on resources of group in ns.
func grant(t *testing.T, ns, user, group string, resources []string, verbs ...string) {
	t.Helper()
	ctx := context.Background()
	name := "grant-" + user + "-" + resources[0]
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: resources, Verbs: verbs}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
}

func newGitSync(t *testing.T, ns, name, url string, st sluicev1beta1.GitSyncStatus) *sluicev1beta1.GitSync {
	t.Helper()
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: sluicev1beta1.GitSyncSpec{URL: url}}
	if err := env.Client.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	gs.Status = st
	if err := env.Client.Status().Update(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

type releaseReply struct {
	Object struct {
		SourceSHA string `json:"sourceSha"`
	} `json:"object"`
	Release struct {
		Commit *struct {
			SHA, URL, Repository, GitSync, Note, Subject, Author string
		} `json:"commit"`
		Traffic struct{ Primary, Canary, Baseline int32 } `json:"traffic"`
	} `json:"release"`
}

// Given a release that a GitSync revision on GitHub started, the release
// page gets the commit's link and the traffic split; a user who may read
// the Canary but not the GitSync gets the SHA and why there is no link.
func TestDashboardRelease_CommitLinkAndTrafficSplit(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newGitSync(t, ns, "apps", "https://deploy:s3cr3t@github.com/acme/podinfo.git", sluicev1beta1.GitSyncStatus{
		LastAppliedRevision: "main@sha1:" + sha, LastAppliedCommit: &sluicev1beta1.GitSyncCommit{Subject: "podinfo: 6.9.0", Author: "Jane Doe"},
	})
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{
		Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 30, BaselineWeight: 10, Revision: "abc",
		Source: &sluicev1beta1.ReleaseSource{GitSyncName: "apps", GitSyncNamespace: ns, Revision: "main@sha1:" + sha, Release: "abc"},
	})

	ts := startServer(t, userClient(t, ""))
	c, _ := session(t, ts)
	var got releaseReply
	g.Expect(getJSON(t, c, ts.URL+"/api/canaries/"+ns+"/podinfo", &got)).To(Equal(http.StatusOK))
	g.Expect(got.Object.SourceSHA).To(Equal(sha))
	g.Expect(got.Release.Commit).NotTo(BeNil())
	g.Expect(got.Release.Commit.URL).To(Equal("https://github.com/acme/podinfo/commit/" + sha))
	g.Expect(got.Release.Commit.Repository).To(Equal("https://github.com/acme/podinfo.git"), "no credentials")
	g.Expect(got.Release.Commit.GitSync).To(Equal(ns + "/apps"))
	g.Expect(got.Release.Commit.Subject).To(Equal("podinfo: 6.9.0"))
	g.Expect(got.Release.Commit.Author).To(Equal("Jane Doe"))
	g.Expect(got.Release.Traffic).To(Equal(struct{ Primary, Canary, Baseline int32 }{60, 30, 10}))

	// The overview's GitSync row carries the link prefix for the Canaries' rows.
	var gsReply struct {
		Object struct{ SHA, CommitPrefix string } `json:"object"`
	}
	g.Expect(getJSON(t, c, ts.URL+"/api/gitsyncs/"+ns+"/apps", &gsReply)).To(Equal(http.StatusOK))
	g.Expect(gsReply.Object.SHA).To(Equal(sha))
	g.Expect(gsReply.Object.CommitPrefix).To(Equal("https://github.com/acme/podinfo/commit/"))

	grant(t, ns, "carol", sluicev1beta1.GroupVersion.Group, []string{"canaries"}, "get", "list", "watch")
	ts = startServer(t, userClient(t, "carol"))
	c, _ = session(t, ts)
	got = releaseReply{}
	g.Expect(getJSON(t, c, ts.URL+"/api/canaries/"+ns+"/podinfo", &got)).To(Equal(http.StatusOK))
	g.Expect(got.Release.Commit.SHA).To(Equal(sha))
	g.Expect(got.Release.Commit.URL).To(BeEmpty())
	g.Expect(got.Release.Commit.Note).To(And(ContainSubstring("cannot be read"), ContainSubstring(`User "carol" cannot get resource "gitsyncs"`)))
}

type healthReply struct {
	Health []struct {
		Kind, Name, Status, Message string
	} `json:"health"`
	HealthError string `json:"healthError"`
}

func healthByName(r healthReply) map[string]string {
	out := map[string]string{}
	for _, h := range r.Health {
		out[h.Kind+"/"+h.Name] = h.Status
	}
	return out
}

// Given a GitSync whose inventory holds a ready ConfigMap and Secret, a
// Deployment that has not rolled out and a deleted object, the GitSync page
// shows each one's kstatus health as the user can read it: a user who may
// read GitSyncs but not those objects sees Forbidden, not a guess.
func TestDashboardGitSync_InventoryHealth(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	g.Expect(env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, StringData: map[string]string{"token": "s3cr3t"}})).To(Succeed())
	labels := map[string]string{"app": "web"}
	g.Expect(env.Client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				// No node matches: its pod never runs, the rollout stays in progress.
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"sluice.dev/no-such-node": "true"},
					Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}},
	})).To(Succeed())
	now := metav1.NewTime(time.Now())
	newGitSync(t, ns, "apps", "https://git.example.com/acme/apps.git", sluicev1beta1.GitSyncStatus{
		LastAppliedRevision: "main@sha1:" + sha, LastAppliedTime: &now,
		LastFailureReason: "HealthCheckFailed", LastFailureMessage: "Deployment web is not ready",
		Inventory: []sluicev1beta1.GitSyncInventoryEntry{
			{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "settings"},
			{Version: "v1", Kind: "Secret", Namespace: ns, Name: "creds"},
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: "web"},
			{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "deleted"},
		},
	})

	ts := startServer(t, userClient(t, ""))
	c, _ := session(t, ts)
	var got healthReply
	resp, err := c.Get(ts.URL + "/api/gitsyncs/" + ns + "/apps")
	g.Expect(err).NotTo(HaveOccurred())
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	g.Expect(string(raw)).NotTo(ContainSubstring("s3cr3t"), "a Secret's data never reaches the page")
	g.Expect(json.Unmarshal(raw, &got)).To(Succeed())
	g.Expect(healthByName(got)).To(Equal(map[string]string{
		"ConfigMap/settings": "Current", "Secret/creds": "Current", "Deployment/web": "InProgress", "ConfigMap/deleted": "NotFound",
	}))
	// An unknown host gets no link: the page shows the SHA alone.
	var view struct {
		Object struct{ SHA, CommitPrefix, FailureReason string } `json:"object"`
	}
	g.Expect(json.Unmarshal(raw, &view)).To(Succeed())
	g.Expect(view.Object.SHA).To(Equal(sha))
	g.Expect(view.Object.CommitPrefix).To(BeEmpty())
	g.Expect(view.Object.FailureReason).To(Equal("HealthCheckFailed"))

	grantRead(t, ns, "dave")
	ts = startServer(t, userClient(t, "dave"))
	c, _ = session(t, ts)
	got = healthReply{}
	g.Expect(getJSON(t, c, ts.URL+"/api/gitsyncs/"+ns+"/apps", &got)).To(Equal(http.StatusOK))
	g.Expect(healthByName(got)).To(HaveEach("Forbidden"))
	g.Expect(got.Health).To(HaveLen(4))
}

// Given a Canary with two promotions and a rollback in its delivery
// records, the delivery page gets the figures `kubectl sluice report`
// computes; a bad window and a user who may not list Canaries get clear errors.
func TestDashboardDelivery_Figures(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	at := func(d time.Duration) *metav1.Time {
		t := metav1.NewTime(time.Now().Add(-d).Truncate(time.Second))
		return &t
	}
	h := time.Hour
	newCanary(t, ns, "web", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded, Delivery: &sluicev1beta1.DeliveryStatus{
		ReleasesStarted: 3, Promotions: 2, Rollbacks: sluicev1beta1.RollbackCounts{Analysis: 1},
		Releases: []sluicev1beta1.DeliveryRecord{
			{Revision: "a", StartTime: *at(5 * h), EndTime: at(4 * h), Outcome: sluicev1beta1.DeliveryPromoted, LeadTimeSeconds: ptr.To[int64](600)},
			{Revision: "b", StartTime: *at(3 * h), EndTime: at(2 * h), Outcome: sluicev1beta1.DeliveryRolledBack, Cause: sluicev1beta1.RollbackAnalysis, TimeToRestoreSeconds: ptr.To[int64](90)},
			{Revision: "c", StartTime: *at(h), EndTime: at(h / 2), Outcome: sluicev1beta1.DeliveryPromoted, LeadTimeSeconds: ptr.To[int64](1200)},
		},
	}})
	ts := startServer(t, userClient(t, ""))
	c, _ := session(t, ts)
	var rep struct {
		Since    string
		Canaries []struct {
			Namespace, Name   string
			Deployments       int64
			ChangeFailureRate *float64
			LeadTimeSeconds   struct{ Median, P90 *int64 }
			MeanTimeToRestore *float64 `json:"meanTimeToRestoreSeconds"`
		}
	}
	g.Expect(getJSON(t, c, ts.URL+"/api/delivery?namespace="+ns+"&since=7d", &rep)).To(Equal(http.StatusOK))
	g.Expect(rep.Since).To(Equal("7d"))
	g.Expect(rep.Canaries).To(HaveLen(1))
	f := rep.Canaries[0]
	g.Expect(f.Name).To(Equal("web"))
	g.Expect(f.Deployments).To(BeEquivalentTo(2))
	g.Expect(*f.ChangeFailureRate).To(BeNumerically("~", 1.0/3, 1e-9))
	g.Expect(*f.LeadTimeSeconds.Median).To(BeEquivalentTo(600))
	g.Expect(*f.MeanTimeToRestore).To(Equal(90.0))

	var bad struct{ Error, Reason string }
	g.Expect(getJSON(t, c, ts.URL+"/api/delivery?namespace="+ns+"&since=forever", &bad)).To(Equal(http.StatusBadRequest))
	g.Expect(bad.Error).To(ContainSubstring("want a number of days such as 30d"))

	ts = startServer(t, userClient(t, "eve"))
	c, _ = session(t, ts)
	g.Expect(getJSON(t, c, ts.URL+"/api/delivery?namespace="+ns, &bad)).To(Equal(http.StatusForbidden))
	g.Expect(bad.Reason).To(Equal("forbidden"))
}
