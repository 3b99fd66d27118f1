package promotion

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The promotion controller reads the AlertProviders of spec.alerts through
// the notification Dispatcher (the Dispatcher reads their Secrets).
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch

// Types of the events a Pipeline sends to its spec.alerts.
const (
	// AlertCommitted: a bundle was committed to a stage (or its pull request merged).
	AlertCommitted = "Committed"
	// AlertRolledBack: a rollback's commit landed on a stage.
	AlertRolledBack = "RolledBack"
	// AlertRecovered: a stage whose failure was sent is no longer failing.
	AlertRecovered = "Recovered"
	// A bundle that failed in a stage is sent under the stage's reason
	// (VerificationFailed, PullRequestClosed, Superseded), a failed write
	// under its reason (SetterNotFound, PushRejected, GitUnreachable,
	// InvalidGitTarget), and a bundle at a manual gate as WaitingForApproval.
)

// Severities of an AlertEvent, as spec.alerts[].eventSeverity reads them.
const (
	AlertSeverityInfo  = "info"
	AlertSeverityError = "error"
)

// AlertEvent is one notification about a stage of a Pipeline. Every text
// is taken from the status, which holds no credentials.
type AlertEvent struct {
	// Type is the event, e.g. VerificationFailed or Committed.
	Type string
	// Severity is info or error.
	Severity string
	// Stage is the stage's name.
	Stage string
	// Bundle is the bundle the event is about, with its images.
	Bundle sluicev1beta1.Bundle
	// Message is the one-line text.
	Message string
	// Commit, PullRequest and Release are those of the stage, when known.
	Commit, PullRequest, Release string
	// Time is when the event was decided.
	Time time.Time
}

// AlertDelivery is one event for one alert of a Pipeline.
type AlertDelivery struct {
	// Alert is the name of the alert in spec.alerts.
	Alert string
	// Provider is the AlertProvider (its namespace defaulted to the Pipeline's).
	Provider types.NamespacedName
	// Event is what to send.
	Event AlertEvent
}

// Notifier delivers the events of Pipelines to AlertProviders (cmd/sluice
// hands them to the notify.Dispatcher). NotifyPipeline must not block: the
// reconciler calls it after the status patch that records the delivery,
// once per delivery.
type Notifier interface {
	NotifyPipeline(p *sluicev1beta1.Pipeline, d AlertDelivery)
}

// fact is something true of a stage that is worth an alert once: the key
// names it in status.alerts[].sent for as long as it stays true.
type fact struct {
	key   string
	event AlertEvent
}

// writeFailures are the stage reasons of a write that failed.
var writeFailures = []string{
	sluicev1beta1.PipelineReasonSetterNotFound, sluicev1beta1.PipelineReasonPushRejected,
	sluicev1beta1.PipelineReasonGitUnreachable, ReasonInvalidGitTarget,
}

// stageFacts are the facts of a stage's status worth an alert.
func stageFacts(p *sluicev1beta1.Pipeline, st *sluicev1beta1.PipelineStageStatus, now time.Time) []fact {
	base := AlertEvent{Stage: st.Name, Bundle: bundleOrID(p, st.Bundle), Commit: st.Commit, PullRequest: st.PullRequest, Release: st.Release, Time: now}
	var out []fact
	add := func(key, typ, severity, msg string) {
		e := base
		e.Type, e.Severity, e.Message = typ, severity, truncate(msg, 1024)
		out = append(out, fact{key: truncate(key, 128), event: e})
	}
	tags := bundleTags(base.Bundle)
	switch {
	case st.Bundle == "":
	case st.State == sluicev1beta1.StageFailed:
		add("Failed/"+st.Bundle+"/"+st.Reason, orReason(st.Reason, "Failed"), AlertSeverityError,
			fmt.Sprintf("%s: bundle %s (%s) failed: %s", st.Name, st.Bundle, tags, st.Message))
	case st.State == sluicev1beta1.StagePending && slices.Contains(writeFailures, st.Reason):
		add(st.Reason+"/"+st.Bundle, st.Reason, AlertSeverityError,
			fmt.Sprintf("%s: bundle %s (%s) could not be written: %s", st.Name, st.Bundle, tags, st.Message))
	case st.Commit != "" && st.State != sluicev1beta1.StagePending:
		typ, what := AlertCommitted, "committed"
		if st.Rollback {
			typ, what = AlertRolledBack, "rolled back to"
		}
		msg := fmt.Sprintf("%s: bundle %s (%s) committed as %s", st.Name, st.Bundle, tags, short(st.Commit))
		if st.Rollback {
			msg = fmt.Sprintf("%s %s bundle %s (%s) in commit %s", st.Name, what, st.Bundle, tags, short(st.Commit))
		}
		if st.Reason == sluicev1beta1.PipelineReasonAlreadyInBranch || st.Reason == sluicev1beta1.PipelineReasonAdopted {
			// Nothing was committed: say so rather than name the head as ours (see adopt.go).
			msg = fmt.Sprintf("%s: bundle %s (%s) was already in the branch at commit %s: nothing committed", st.Name, st.Bundle, tags, short(st.Commit))
		}
		add(typ+"/"+st.Bundle+"/"+st.Commit, typ, AlertSeverityInfo, msg)
	}
	if g := st.Gate; g != nil && g.Reason == sluicev1beta1.PipelineReasonWaitingForApproval {
		e := base
		e.Bundle = bundleOrID(p, g.Bundle)
		e.Type, e.Severity, e.Commit, e.PullRequest, e.Release = g.Reason, AlertSeverityInfo, "", "", ""
		e.Message = truncate(fmt.Sprintf("%s: bundle %s (%s) waits for approval: kubectl sluice promote-stage %s %s -n %s",
			st.Name, g.Bundle, bundleTags(e.Bundle), p.Name, st.Name, p.Namespace), 1024)
		out = append(out, fact{key: g.Reason + "/" + g.Bundle, event: e})
	}
	return out
}

func orReason(r, def string) string {
	if r == "" {
		return def
	}
	return r
}

// bundleOrID is the bundle of status.bundles, or one with the id alone.
func bundleOrID(p *sluicev1beta1.Pipeline, id string) sluicev1beta1.Bundle {
	for _, b := range p.Status.Bundles {
		if b.ID == id {
			return *b.DeepCopy()
		}
	}
	return sluicev1beta1.Bundle{ID: id}
}

func bundleTags(b sluicev1beta1.Bundle) string {
	tags := make([]string, 0, len(b.Images))
	for _, im := range b.Images {
		tags = append(tags, im.Source+":"+im.Tag)
	}
	if len(tags) == 0 {
		return "images unknown"
	}
	return strings.Join(tags, ", ")
}

// isFailureKey tells whether a recorded key is of an error fact.
func isFailureKey(k string) bool {
	typ, _, _ := strings.Cut(k, "/")
	return typ == "Failed" || slices.Contains(writeFailures, typ)
}

// decideAlerts decides the events of the decided status (p carries the
// spec; cur is the status about to be patched, which it updates) and
// records them in cur.Alerts:
//   - a fact of a stage is sent once, for as long as it is true (it is in
//     status.alerts[].sent); a fact that ends is forgotten, so it is sent
//     again should it come back;
//   - a stage whose failure was sent and that has no failure any more
//     sends Recovered, to every alert (it closes what was opened);
//   - other events go to the alerts whose eventSeverity accepts them.
//
// It is pure: prev is the record of what was sent, now the time.
func decideAlerts(p *sluicev1beta1.Pipeline, prev []sluicev1beta1.PipelineAlertRecord, cur *sluicev1beta1.PipelineStatus, now time.Time) []AlertDelivery {
	if len(p.Spec.Alerts) == 0 {
		cur.Alerts = nil
		return nil
	}
	view := &sluicev1beta1.Pipeline{ObjectMeta: p.ObjectMeta, Spec: p.Spec, Status: *cur}
	var events []AlertEvent
	var records []sluicev1beta1.PipelineAlertRecord
	stamp := metav1.NewTime(now)
	for i := range cur.Stages {
		st := &cur.Stages[i]
		var sent []string
		var last *metav1.Time
		if j := slices.IndexFunc(prev, func(r sluicev1beta1.PipelineAlertRecord) bool { return r.Stage == st.Name }); j >= 0 {
			sent, last = prev[j].Sent, prev[j].LastSentTime
		}
		facts := stageFacts(view, st, now)
		rec := sluicev1beta1.PipelineAlertRecord{Stage: st.Name, LastSentTime: last}
		failing := false
		for _, f := range facts {
			failing = failing || f.event.Severity == AlertSeverityError
			if !slices.Contains(sent, f.key) {
				events = append(events, f.event)
				rec.LastSentTime = &stamp
			}
			rec.Sent = append(rec.Sent, f.key)
		}
		if !failing && slices.ContainsFunc(sent, isFailureKey) {
			events = append(events, recovered(view, st, sent, now))
			rec.LastSentTime = &stamp
		}
		if n := len(rec.Sent) - sluicev1beta1.PipelineAlertRecordLimit; n > 0 {
			rec.Sent = rec.Sent[n:]
		}
		if len(rec.Sent) > 0 || rec.LastSentTime != nil {
			records = append(records, rec)
		}
	}
	cur.Alerts = records
	var out []AlertDelivery
	for _, a := range p.Spec.Alerts {
		provider := types.NamespacedName{Namespace: a.ProviderRef.Namespace, Name: a.ProviderRef.Name}
		if provider.Namespace == "" {
			provider.Namespace = p.Namespace
		}
		for _, e := range events {
			if a.EventSeverity == AlertSeverityError && e.Severity != AlertSeverityError && e.Type != AlertRecovered {
				continue
			}
			out = append(out, AlertDelivery{Alert: a.Name, Provider: provider, Event: e})
		}
	}
	return out
}

// recovered is the event of a stage whose failure is over.
func recovered(p *sluicev1beta1.Pipeline, st *sluicev1beta1.PipelineStageStatus, sent []string, now time.Time) AlertEvent {
	var was []string
	for _, k := range sent {
		if isFailureKey(k) {
			typ, rest, _ := strings.Cut(k, "/")
			if typ == "Failed" {
				_, typ, _ = strings.Cut(rest, "/")
			}
			was = append(was, typ)
		}
	}
	b := bundleOrID(p, st.Bundle)
	return AlertEvent{
		Type: AlertRecovered, Severity: AlertSeverityInfo, Stage: st.Name, Bundle: b,
		Commit: st.Commit, PullRequest: st.PullRequest, Release: st.Release, Time: now,
		Message: truncate(fmt.Sprintf("%s recovered from %s: bundle %s (%s) is %s", st.Name, strings.Join(was, ", "), st.Bundle, bundleTags(b), orReason(string(st.State), "Pending")), 1024),
	}
}

// alertMemory holds what this process last wrote to status.alerts of each
// Pipeline. The informer cache may not show that write yet at the next
// reconcile (a Canary event right after the patch): taking the cache for
// the truth would send the same event twice. Only the leader writes a
// Pipeline's status, so its own last write is the newest; after a restart
// the status is the truth.
type alertMemory struct {
	mu sync.Mutex
	m  map[types.NamespacedName]alertState
}

type alertState struct {
	// uid tells a Pipeline from a new one of the same name.
	uid     types.UID
	records []sluicev1beta1.PipelineAlertRecord
}

func (n *alertMemory) get(key types.NamespacedName, uid types.UID) ([]sluicev1beta1.PipelineAlertRecord, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.m[key]
	if !ok || s.uid != uid {
		return nil, false
	}
	return copyRecords(s.records), true
}

func (n *alertMemory) set(key types.NamespacedName, uid types.UID, records []sluicev1beta1.PipelineAlertRecord) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[types.NamespacedName]alertState{}
	}
	n.m[key] = alertState{uid: uid, records: copyRecords(records)}
}

func copyRecords(in []sluicev1beta1.PipelineAlertRecord) []sluicev1beta1.PipelineAlertRecord {
	out := make([]sluicev1beta1.PipelineAlertRecord, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// alertDeliveries decides the alerts of a decision and records them in the
// decided status, which the reconcile then patches. Without a Notifier
// there are none and status.alerts is left alone.
func (r *Reconciler) alertDeliveries(p *sluicev1beta1.Pipeline, d *Decision, now time.Time) []AlertDelivery {
	if r.Notifier == nil {
		return nil
	}
	prev := p.Status.Alerts
	if mem, ok := r.alerted.get(types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, p.UID); ok {
		prev = mem
	}
	return decideAlerts(p, prev, &d.Status, now)
}

// notify hands the deliveries to the Notifier once the status that
// records them is written, and remembers that write (see alertMemory). A
// crash between the two loses these messages, and never sends one twice.
func (r *Reconciler) notify(p *sluicev1beta1.Pipeline, ds []AlertDelivery) {
	if r.Notifier == nil {
		return
	}
	r.alerted.set(types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, p.UID, p.Status.Alerts)
	for _, d := range ds {
		r.Notifier.NotifyPipeline(p, d)
	}
}
