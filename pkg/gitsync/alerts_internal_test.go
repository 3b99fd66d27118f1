package gitsync

import (
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

var alertsT0 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)

const (
	revA = "main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	revB = "main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// alertGitSync is a GitSync with the given alerts.
func alertGitSync(alerts ...sluicev1beta1.GitSyncAlert) *sluicev1beta1.GitSync {
	return &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "flux"},
		Spec: sluicev1beta1.GitSyncSpec{URL: "https://x-access-token:ghp_s3cr3t@github.com/acme/apps.git",
			Ref: &sluicev1beta1.GitRef{Branch: "main"}, Alerts: alerts},
	}
}

func slackAlert(name, severity string) sluicev1beta1.GitSyncAlert {
	return sluicev1beta1.GitSyncAlert{Name: name, ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}, EventSeverity: severity,
		ReminderInterval: &metav1.Duration{Duration: time.Hour}}
}

func failedStatus(rev, reason, msg string) *sluicev1beta1.GitSyncStatus {
	return &sluicev1beta1.GitSyncStatus{LastAppliedRevision: revA, LastAttemptedRevision: rev, LastFailureReason: reason, LastFailureMessage: msg}
}

func appliedStatus(rev string) *sluicev1beta1.GitSyncStatus {
	return &sluicev1beta1.GitSyncStatus{LastAppliedRevision: rev, LastAttemptedRevision: rev}
}

func changeSet(actions ...ssa.Action) *ssa.ChangeSet {
	cs := ssa.NewChangeSet()
	for i, a := range actions {
		name := string(rune('a' + i))
		cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{Name: name, Namespace: "ns", GroupKind: schema.GroupKind{Kind: "ConfigMap"}},
			Subject: "ConfigMap/ns/" + name, Action: a})
	}
	return cs
}

func eventTypes(es []SyncEvent) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func TestDecideEvents(t *testing.T) {
	commit := CommitInfo{Subject: "Bump podinfo to 6.5.0", Author: "Jane Doe", Time: alertsT0.Add(-time.Minute)}
	tests := []struct {
		name       string
		prev, cur  *sluicev1beta1.GitSyncStatus
		out        syncOutcome
		drift      []Drift
		want       []string
		assertions func(g *WithT, es []SyncEvent)
	}{
		{
			name: "a new revision applied",
			prev: appliedStatus(revA), cur: appliedStatus(revB),
			out:  syncOutcome{commit: commit, changes: changeSet(ssa.CreatedAction, ssa.ConfiguredAction, ssa.ConfiguredAction, ssa.UnchangedAction)},
			want: []string{EventRevisionApplied},
			assertions: func(g *WithT, es []SyncEvent) {
				e := es[0]
				g.Expect(e.Severity).To(Equal(SeverityInfo))
				g.Expect(e.Revision).To(Equal(revB))
				g.Expect(e.Commit).To(Equal(commit))
				g.Expect([]int{e.Created, e.Configured, e.Pruned}).To(Equal([]int{1, 2, 0}))
				g.Expect(e.Message).To(Equal("Applied revision " + revB + ": Bump podinfo to 6.5.0 (1 created, 2 configured, 0 pruned)"))
				g.Expect(e.URL).To(Equal("https://github.com/acme/apps.git"))
				g.Expect([]string{e.RefKind, e.Ref}).To(Equal([]string{"branch", "main"}))
			},
		},
		{
			name: "the same revision again sends nothing",
			prev: appliedStatus(revB), cur: appliedStatus(revB),
			out: syncOutcome{commit: commit, changes: changeSet(ssa.UnchangedAction)},
		},
		{
			name: "a build failure",
			prev: appliedStatus(revA), cur: failedStatus(revB, ReasonBuildFailed, "kustomize build failed: yaml: line 3: mapping values are not allowed in this context"),
			out:  syncOutcome{commit: commit},
			want: []string{EventSyncFailed},
			assertions: func(g *WithT, es []SyncEvent) {
				e := es[0]
				g.Expect(e.Severity).To(Equal(SeverityError))
				g.Expect(e.Revision).To(Equal(revB))
				g.Expect(e.FailureReason).To(Equal(ReasonBuildFailed))
				g.Expect(e.Message).To(Equal("BuildFailed: kustomize build failed: yaml: line 3: mapping values are not allowed in this context"))
				g.Expect(e.fingerprint).To(HaveLen(32))
			},
		},
		{
			name: "a health check failure", prev: appliedStatus(revA), cur: failedStatus(revB, ReasonHealthCheckFailed, "Deployment/prod/podinfo not ready after 1m0s"),
			want: []string{EventHealthCheckFailed},
		},
		{
			name: "a decryption failure", prev: appliedStatus(revA), cur: failedStatus(revB, ReasonDecryptionFailed, "failed to decrypt secret.yaml"),
			want: []string{EventDecryptionFailed},
		},
		{
			name: "a bad commit signature takes the reason of SourceVerified",
			prev: appliedStatus(revA),
			cur: func() *sluicev1beta1.GitSyncStatus {
				s := failedStatus(revB, ReasonVerificationFailed, "signature verification of "+revB+" failed: no trusted key")
				s.Conditions = []metav1.Condition{{Type: sluicev1beta1.SourceVerifiedCondition, Status: metav1.ConditionFalse, Reason: ReasonInvalidCommitSignature}}
				return s
			}(),
			want: []string{ReasonInvalidCommitSignature},
		},
		{
			name: "a fetch failure quoting a URL with credentials",
			prev: appliedStatus(revA), cur: failedStatus(revA, ReasonFetchFailed, "failed to fetch https://x-access-token:ghp_s3cr3t@github.com/acme/apps.git: authentication required"),
			want: []string{EventSyncFailed},
			assertions: func(g *WithT, es []SyncEvent) {
				g.Expect(es[0].Error).To(Equal("failed to fetch https://github.com/acme/apps.git: authentication required"))
				g.Expect(es[0].Message).NotTo(ContainSubstring("ghp_s3cr3t"))
				g.Expect(es[0].URL).NotTo(ContainSubstring("ghp_s3cr3t"))
			},
		},
		{
			name: "drift corrected and objects pruned, with the objects named",
			prev: appliedStatus(revA), cur: appliedStatus(revA),
			out:   syncOutcome{pruned: []sluicev1beta1.GitSyncInventoryEntry{{Version: "v1", Kind: "ConfigMap", Namespace: "prod", Name: "old"}, {Version: "v1", Kind: "Namespace", Name: "legacy"}}},
			drift: []Drift{{Subject: "Deployment/prod/podinfo", Kind: "Deployment", Action: "configured"}},
			want:  []string{EventDriftCorrected, EventObjectsPruned},
			assertions: func(g *WithT, es []SyncEvent) {
				g.Expect(es[0].Objects).To(Equal([]string{"Deployment/prod/podinfo (configured)"}))
				g.Expect(es[0].Message).To(Equal("Corrected drift of 1 object changed outside Git: Deployment/prod/podinfo (configured)"))
				g.Expect(es[1].Objects).To(Equal([]string{"ConfigMap/prod/old", "Namespace/legacy"}))
				g.Expect(es[1].Message).To(Equal("Pruned 2 objects removed from Git: ConfigMap/prod/old, Namespace/legacy"))
			},
		},
		{
			name: "a deleted namespace: the objects are bounded",
			prev: appliedStatus(revA), cur: appliedStatus(revA),
			drift: func() []Drift {
				var ds []Drift
				for range 25 {
					ds = append(ds, Drift{Subject: "ConfigMap/prod/x", Action: "created"})
				}
				return ds
			}(),
			want: []string{EventDriftCorrected},
			assertions: func(g *WithT, es []SyncEvent) {
				g.Expect(es[0].Objects).To(HaveLen(maxEventObjects + 1))
				g.Expect(es[0].Objects[maxEventObjects]).To(Equal("… and 15 more"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			es := decideEvents(alertGitSync(), tt.prev, tt.cur, tt.out, tt.drift, alertsT0)
			g.Expect(eventTypes(es)).To(Equal(tt.want))
			for _, e := range es {
				g.Expect(e.Time).To(Equal(alertsT0))
			}
			if tt.assertions != nil {
				tt.assertions(g, es)
			}
		})
	}
}

func TestFingerprint_IgnoresVolatileParts(t *testing.T) {
	g := NewWithT(t)
	a := fingerprint(ReasonHealthCheckFailed, revB, "timeout after 1m0.5s at 2026-12-07T02:00:01Z: read tcp 10.0.0.1:51234->10.0.0.2:443: i/o timeout")
	b := fingerprint(ReasonHealthCheckFailed, revB, "timeout after 59.9s at 2026-12-07T02:05:11.123Z: read tcp 10.0.0.1:40001->10.0.0.2:443: i/o timeout")
	g.Expect(a).To(Equal(b))
	g.Expect(fingerprint(ReasonApplyFailed, revB, "x")).NotTo(Equal(fingerprint(ReasonBuildFailed, revB, "x")), "the reason counts")
	g.Expect(fingerprint(ReasonBuildFailed, revA, "x")).NotTo(Equal(fingerprint(ReasonBuildFailed, revB, "x")), "a new broken commit is news")
	g.Expect(fingerprint(ReasonBuildFailed, revB, "line 3")).NotTo(Equal(fingerprint(ReasonBuildFailed, revB, "line 4")), "a different error is news")
	g.Expect(normalizeFailure("main@sha1:abc v1 sha256")).To(Equal("main@sha1:abc v1 sha256"), "no false durations")
}

func TestRedaction(t *testing.T) {
	g := NewWithT(t)
	g.Expect(redactURL("https://user:token@git.example.com/org/repo.git")).To(Equal("https://git.example.com/org/repo.git"))
	g.Expect(redactURL("ssh://git@github.com/org/repo.git")).To(Equal("ssh://github.com/org/repo.git"))
	g.Expect(scrubCredentials(`Get "https://u:p@h/x": EOF; ssh://git@github.com/a`)).To(Equal(`Get "https://h/x": EOF; ssh://github.com/a`))
}

// send runs one sync's routing and returns the event types per alert.
func send(gs *sluicev1beta1.GitSync, prev, cur *sluicev1beta1.GitSyncStatus, out syncOutcome, now time.Time) []Delivery {
	return routeEvents(gs, cur, decideEvents(gs, prev, cur, out, nil, now), now)
}

func TestRouteEvents_RateLimit(t *testing.T) {
	g := NewWithT(t)
	gs := alertGitSync(slackAlert("team", ""), slackAlert("oncall", SeverityError))
	broken := "BuildFailed"
	msg := "kustomize build failed: yaml: line 3: mapping values are not allowed in this context"

	// A broken commit: both alerts get it once, and it is recorded.
	cur := failedStatus(revB, broken, msg)
	ds := send(gs, appliedStatus(revA), cur, syncOutcome{}, alertsT0)
	g.Expect(ds).To(HaveLen(2))
	g.Expect(ds[0].Provider).To(Equal(types.NamespacedName{Namespace: "flux", Name: "slack"}))
	g.Expect(ds[0].Event.Reminder).To(BeFalse())
	g.Expect(cur.Alerts).To(HaveLen(2))
	g.Expect(cur.Alerts[0].Fingerprint).To(Equal(ds[0].Event.fingerprint))
	g.Expect(cur.Alerts[0].Reason).To(Equal(EventSyncFailed))
	g.Expect(cur.Alerts[0].LastSentTime.Time).To(Equal(alertsT0))

	// The next intervals within the reminder interval send nothing.
	for _, after := range []time.Duration{time.Second, time.Minute, 59 * time.Minute} {
		next := failedStatus(revB, broken, msg)
		next.Alerts = cur.Alerts
		g.Expect(send(gs, cur, next, syncOutcome{}, alertsT0.Add(after))).To(BeEmpty(), "after %s", after)
		g.Expect(next.Alerts).To(Equal(cur.Alerts))
	}

	// After the reminder interval: one reminder per alert.
	later := failedStatus(revB, broken, msg)
	later.Alerts = cur.Alerts
	ds = send(gs, cur, later, syncOutcome{}, alertsT0.Add(time.Hour))
	g.Expect(ds).To(HaveLen(2))
	g.Expect(ds[0].Event.Reminder).To(BeTrue())
	g.Expect(later.Alerts[0].LastSentTime.Time).To(Equal(alertsT0.Add(time.Hour)))

	// A new distinct failure is sent at once.
	other := failedStatus(revB, ReasonApplyFailed, "admission webhook denied the request")
	other.Alerts = later.Alerts
	ds = send(gs, later, other, syncOutcome{}, alertsT0.Add(time.Hour+time.Second))
	g.Expect(ds).To(HaveLen(2))
	g.Expect(ds[0].Event.Reminder).To(BeFalse())

	// Recovery: both alerts (the error-only one too) get one Recovered,
	// which carries the revision in place of RevisionApplied; the records close.
	fixed := appliedStatus("main@sha1:cccccccccccccccccccccccccccccccccccccccc")
	fixed.Alerts = other.Alerts
	ds = send(gs, other, fixed, syncOutcome{commit: CommitInfo{Subject: "Fix the YAML", Author: "Jane Doe"}, changes: changeSet(ssa.ConfiguredAction)}, alertsT0.Add(2*time.Hour))
	g.Expect(ds).To(HaveLen(2))
	for _, d := range ds {
		g.Expect(d.Event.Type).To(Equal(EventRecovered))
		g.Expect(d.Event.Commit.Subject).To(Equal("Fix the YAML"))
		g.Expect(d.Event.Configured).To(Equal(1))
	}
	g.Expect(fixed.Alerts[0].Fingerprint).To(BeEmpty())
	g.Expect(fixed.Alerts[0].Reason).To(Equal(EventRecovered))

	// The next revision is a plain RevisionApplied, for the info alert only.
	next := appliedStatus("main@sha1:dddddddddddddddddddddddddddddddddddddddd")
	next.Alerts = fixed.Alerts
	ds = send(gs, fixed, next, syncOutcome{}, alertsT0.Add(3*time.Hour))
	g.Expect(ds).To(HaveLen(1))
	g.Expect(ds[0].Alert).To(Equal("team"))
	g.Expect(ds[0].Event.Type).To(Equal(EventRevisionApplied))
}

// TestRouteEvents_Restart: the record of a sent failure lives in status, so
// a restarted controller, which knows nothing else, does not send it again.
func TestRouteEvents_Restart(t *testing.T) {
	g := NewWithT(t)
	gs := alertGitSync(slackAlert("team", ""))
	msg := "kustomize build failed: yaml: line 3"
	first := failedStatus(revB, ReasonBuildFailed, msg)
	g.Expect(send(gs, appliedStatus(revA), first, syncOutcome{}, alertsT0)).To(HaveLen(1))

	// What the API server returns after a restart: the status as written,
	// times at second precision.
	stored := first.DeepCopy()
	stored.Alerts[0].LastSentTime = &metav1.Time{Time: alertsT0.Add(400 * time.Millisecond).Truncate(time.Second)}
	gs.Status = *stored
	again := stored.DeepCopy()
	g.Expect(send(gs, stored, again, syncOutcome{}, alertsT0.Add(5*time.Minute))).To(BeEmpty())

	// The memory of this process wins over a stale cache (alertDeliveries).
	r := &GitSyncReconciler{Notifier: &recordingNotifier{}}
	r.notified.set(types.NamespacedName{Namespace: "flux", Name: "apps"}, notifiedState{revision: revA, alerts: stored.Alerts})
	gs.Status = *appliedStatus(revA) // the cache has not seen the failure record yet
	cur := failedStatus(revB, ReasonBuildFailed, msg)
	r.Clock = clocktesting.NewFakePassiveClock(alertsT0.Add(time.Second))
	g.Expect(r.alertDeliveries(gs, cur, syncOutcome{}, nil)).To(BeEmpty())
	g.Expect(cur.Alerts).To(Equal(stored.Alerts))
}

func TestRouteEvents_Filters(t *testing.T) {
	g := NewWithT(t)
	included := slackAlert("builds", "")
	included.InclusionList = []string{"^BuildFailed"}
	excluded := slackAlert("nodrift", "")
	excluded.ExclusionList = []string{"(?i)drift"}
	suspended := slackAlert("quiet", "")
	suspended.Suspend = true
	other := slackAlert("other-ns", "")
	other.ProviderRef.Namespace = "ops"
	gs := alertGitSync(included, excluded, suspended, other)

	cur := failedStatus(revB, ReasonBuildFailed, "bad yaml")
	ds := send(gs, appliedStatus(revA), cur, syncOutcome{}, alertsT0)
	var names []string
	for _, d := range ds {
		names = append(names, d.Alert+"@"+d.Provider.String())
	}
	g.Expect(names).To(Equal([]string{"builds@flux/slack", "nodrift@flux/slack", "other-ns@ops/slack"}))
	g.Expect(cur.Alerts).To(HaveLen(3), "the suspended alert records nothing")

	drift := []Drift{{Subject: "Deployment/prod/podinfo", Action: "configured"}}
	st := appliedStatus(revA)
	ds = routeEvents(gs, st, decideEvents(gs, appliedStatus(revA), st, syncOutcome{}, drift, alertsT0), alertsT0)
	names = nil
	for _, d := range ds {
		names = append(names, d.Alert)
	}
	g.Expect(names).To(Equal([]string{"other-ns"}))
}

func TestRouteEvents_RemovedAlertsAreForgotten(t *testing.T) {
	g := NewWithT(t)
	gs := alertGitSync(slackAlert("team", ""))
	cur := failedStatus(revB, ReasonBuildFailed, "x")
	cur.Alerts = []sluicev1beta1.GitSyncAlertStatus{{Name: "gone", Fingerprint: "f"}, {Name: "team", Fingerprint: "g"}}
	send(gs, appliedStatus(revA), cur, syncOutcome{}, alertsT0)
	g.Expect(cur.Alerts).To(HaveLen(1))
	g.Expect(cur.Alerts[0].Name).To(Equal("team"))
}

type recordingNotifier struct{ got []Delivery }

func (n *recordingNotifier) NotifyGitSync(_ *sluicev1beta1.GitSync, d Delivery) {
	n.got = append(n.got, d)
}

// TestRouteEvents_FilteredRecoveryClosesSilently: a recovery the lists
// filter out closes the record without claiming it was sent.
func TestRouteEvents_FilteredRecoveryClosesSilently(t *testing.T) {
	g := NewWithT(t)
	a := slackAlert("builds", "")
	a.InclusionList = []string{"^BuildFailed"}
	gs := alertGitSync(a)
	cur := appliedStatus(revB)
	cur.Alerts = []sluicev1beta1.GitSyncAlertStatus{{Name: "builds", Fingerprint: "f", Reason: EventSyncFailed, LastSentTime: &metav1.Time{Time: alertsT0}}}
	g.Expect(send(gs, failedStatus(revB, ReasonBuildFailed, "x"), cur, syncOutcome{}, alertsT0.Add(time.Minute))).To(BeEmpty())
	g.Expect(cur.Alerts).To(BeEmpty())
}

// TestAlertDeliveries_MemoryOfAnotherGitSyncIsIgnored: a GitSync deleted
// and created again under the same name starts from its own status.
func TestAlertDeliveries_MemoryOfAnotherGitSyncIsIgnored(t *testing.T) {
	g := NewWithT(t)
	gs := alertGitSync(slackAlert("team", ""))
	gs.UID = "new"
	r := &GitSyncReconciler{Notifier: &recordingNotifier{}, Clock: clocktesting.NewFakePassiveClock(alertsT0)}
	r.notified.set(types.NamespacedName{Namespace: "flux", Name: "apps"}, notifiedState{uid: "old", revision: revB,
		alerts: []sluicev1beta1.GitSyncAlertStatus{{Name: "team", Fingerprint: fingerprint(ReasonBuildFailed, revB, "x"), LastSentTime: &metav1.Time{Time: alertsT0}}}})
	g.Expect(r.alertDeliveries(gs, failedStatus(revB, ReasonBuildFailed, "x"), syncOutcome{}, nil)).To(HaveLen(1))
	g.Expect(r.alertDeliveries(gs, appliedStatus(revA), syncOutcome{}, nil)).To(HaveLen(1), "revision A is new to this GitSync")
}

// TestNotify_WithoutNotifierSendsAndRecordsNothing: alerts are off by
// default, and status.alerts is left alone.
func TestNotify_WithoutNotifierSendsAndRecordsNothing(t *testing.T) {
	g := NewWithT(t)
	gs := alertGitSync(slackAlert("team", ""))
	r := &GitSyncReconciler{}
	cur := failedStatus(revB, ReasonBuildFailed, "x")
	g.Expect(r.alertDeliveries(gs, cur, syncOutcome{}, nil)).To(BeNil())
	g.Expect(cur.Alerts).To(BeNil())
	r.notify(gs, []Delivery{{Alert: "team"}}) // no panic, nothing to send to
}

// TestNotify_RemembersTheWriteAndSendsEachDelivery: after the patch, the
// deliveries go out once each, and the written record is remembered.
func TestNotify_RemembersTheWriteAndSendsEachDelivery(t *testing.T) {
	g := NewWithT(t)
	n := &recordingNotifier{}
	r := &GitSyncReconciler{Notifier: n}
	gs := alertGitSync(slackAlert("team", ""))
	gs.Status = *failedStatus(revB, ReasonBuildFailed, "x")
	gs.Status.Alerts = []sluicev1beta1.GitSyncAlertStatus{{Name: "team", Fingerprint: "f"}}
	r.notify(gs, []Delivery{{Alert: "team", Event: SyncEvent{Type: EventSyncFailed}}})
	g.Expect(n.got).To(HaveLen(1))
	mem, ok := r.notified.get(types.NamespacedName{Namespace: "flux", Name: "apps"})
	g.Expect(ok).To(BeTrue())
	g.Expect(mem.revision).To(Equal(revA))
	g.Expect(mem.alerts).To(Equal(gs.Status.Alerts))
	r.notified.forget(types.NamespacedName{Namespace: "flux", Name: "apps"})
	_, ok = r.notified.get(types.NamespacedName{Namespace: "flux", Name: "apps"})
	g.Expect(ok).To(BeFalse())
}
