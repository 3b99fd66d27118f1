package gitsync

import (
	"regexp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Delivery is one event for one alert of a GitSync.
type Delivery struct {
	// Alert is the name of the alert in spec.alerts.
	Alert string
	// Provider is the AlertProvider (its namespace defaulted to the GitSync's).
	Provider types.NamespacedName
	// Event is what to send.
	Event SyncEvent
}

// routeEvents decides what each alert of gs is sent and records the
// failures sent in cur.Alerts, which the status patch of the sync writes:
//   - a failure is sent once per distinct failure (fingerprint), then at
//     most once per reminderInterval while it persists; a new distinct
//     failure is sent at once;
//   - an alert that was sent a failure gets a Recovered event when a sync
//     succeeds again, whatever its eventSeverity (it closes what it
//     opened); it carries the revision applied, in place of RevisionApplied;
//   - other events go to the alerts whose eventSeverity accepts them;
//   - inclusionList and exclusionList filter by the event's message; a
//     suspended alert is sent nothing and its record is kept.
//
// It is pure: the time is given and cur.Alerts is the only state.
func routeEvents(gs *sluicev1beta1.GitSync, cur *sluicev1beta1.GitSyncStatus, events []SyncEvent, now time.Time) []Delivery {
	var out []Delivery
	var records []sluicev1beta1.GitSyncAlertStatus
	for _, a := range gs.Spec.Alerts {
		rec := sluicev1beta1.GitSyncAlertStatus{Name: a.Name}
		for _, r := range cur.Alerts {
			if r.Name == a.Name {
				r.DeepCopyInto(&rec)
			}
		}
		if !a.Suspend {
			var sent []SyncEvent
			sent, rec = routeAlert(gs, cur, a, rec, events, now)
			provider := types.NamespacedName{Namespace: a.ProviderRef.Namespace, Name: a.ProviderRef.Name}
			if provider.Namespace == "" {
				provider.Namespace = gs.Namespace
			}
			for _, e := range sent {
				out = append(out, Delivery{Alert: a.Name, Provider: provider, Event: e})
			}
		}
		if rec.Fingerprint != "" || rec.LastSentTime != nil {
			records = append(records, rec)
		}
	}
	cur.Alerts = records
	return out
}

// routeAlert returns the events one alert is sent and its new record.
func routeAlert(gs *sluicev1beta1.GitSync, cur *sluicev1beta1.GitSyncStatus, a sluicev1beta1.GitSyncAlert, rec sluicev1beta1.GitSyncAlertStatus,
	events []SyncEvent, now time.Time) ([]SyncEvent, sluicev1beta1.GitSyncAlertStatus) {
	var sent []SyncEvent
	stamp := metav1.NewTime(now)
	recovered := false
	if cur.LastFailureReason == "" && rec.Fingerprint != "" {
		// The failure this alert was told about is over.
		e := recoveredEvent(gs, cur, events, now)
		rec = sluicev1beta1.GitSyncAlertStatus{Name: a.Name}
		recovered = true
		if matches(a, e.Message) {
			rec.Reason, rec.LastSentTime = EventRecovered, &stamp
			sent = append(sent, e)
		}
	}
	for _, e := range events {
		if recovered && e.Type == EventRevisionApplied {
			continue // the Recovered event carries it
		}
		if !acceptsSeverity(a.EventSeverity, e.Severity) || !matches(a, e.Message) {
			continue
		}
		if e.fingerprint != "" {
			if rec.Fingerprint == e.fingerprint {
				if rec.LastSentTime != nil && now.Sub(rec.LastSentTime.Time) < reminderInterval(a) {
					continue
				}
				e.Reminder = true
			}
			rec = sluicev1beta1.GitSyncAlertStatus{Name: a.Name, Fingerprint: e.fingerprint, Reason: e.Type, LastSentTime: &stamp}
		}
		sent = append(sent, e)
	}
	return sent, rec
}

// acceptsSeverity: info receives everything, error only errors.
func acceptsSeverity(alert, event string) bool {
	return alert != SeverityError || event == SeverityError
}

// matches applies the inclusion and exclusion lists to msg, as Flux's
// Alert does: an inclusion list lets through only what it matches, and an
// exclusion wins. The API server compiles the expressions when the
// GitSync is written, so a failure to compile here cannot happen; should
// it, the expression matches nothing rather than everything.
func matches(a sluicev1beta1.GitSyncAlert, msg string) bool {
	if len(a.InclusionList) > 0 && !anyMatch(a.InclusionList, msg) {
		return false
	}
	return !anyMatch(a.ExclusionList, msg)
}

func anyMatch(exprs []string, msg string) bool {
	for _, x := range exprs {
		if re, err := regexp.Compile(x); err == nil && re.MatchString(msg) {
			return true
		}
	}
	return false
}

func reminderInterval(a sluicev1beta1.GitSyncAlert) time.Duration {
	if a.ReminderInterval != nil && a.ReminderInterval.Duration >= time.Minute {
		return a.ReminderInterval.Duration
	}
	return sluicev1beta1.DefaultGitSyncAlertReminderInterval
}
