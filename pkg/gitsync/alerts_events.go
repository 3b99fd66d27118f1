package gitsync

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Types of the events a GitSync sends to its spec.alerts. A failed
// verification is sent under the reason of its SourceVerified condition
// (InvalidCommitSignature, InvalidTagSignature, VerificationError).
const (
	EventRevisionApplied   = "RevisionApplied"
	EventSyncFailed        = "SyncFailed"
	EventHealthCheckFailed = "HealthCheckFailed"
	EventDecryptionFailed  = "DecryptionFailed"
	EventDriftCorrected    = "DriftCorrected"
	EventObjectsPruned     = "ObjectsPruned"
	EventRecovered         = "Recovered"
	// EventHelmUpgradeFailed: a chart upgrade failed its health checks, and
	// was rolled back or cannot be (helm_remediation.go).
	EventHelmUpgradeFailed = "HelmUpgradeFailed"
)

// Severities of SyncEvent.
const (
	SeverityInfo  = sluicev1beta1.GitSyncAlertSeverityInfo
	SeverityError = sluicev1beta1.GitSyncAlertSeverityError
)

// maxEventObjects bounds the objects named by one event; a deleted
// namespace can bring back hundreds, the rest are counted.
const maxEventObjects = 10

// SyncEvent is one notification about a GitSync. Every text in it is free
// of credentials: the URL has no user information and the error has the
// user information of any URL removed.
type SyncEvent struct {
	// Type is the event, e.g. RevisionApplied or SyncFailed.
	Type string
	// Severity is info or error.
	Severity string
	// Message is the one-line text that spec.alerts[].inclusionList and
	// exclusionList are matched against.
	Message string
	// URL is the repository, without credentials.
	URL string
	// RefKind is branch, tag, semver or commit; Ref its value.
	RefKind, Ref string
	// Revision is "<ref>@sha1:<sha>": the revision applied, or the one
	// that failed.
	Revision string
	// Commit describes the commit of Revision when it is known.
	Commit CommitInfo
	// FailureReason is the reason of a failure (status.lastFailureReason),
	// e.g. BuildFailed; Error its message.
	FailureReason, Error string
	// Created, Configured and Pruned count the objects the sync changed.
	Created, Configured, Pruned int
	// NewRevision is true when the event reports a new revision applied
	// (RevisionApplied, or the Recovered that carries it).
	NewRevision bool
	// Objects are the objects corrected or pruned, "Kind/namespace/name",
	// at most maxEventObjects (plus one line counting the rest).
	Objects []string
	// Reminder is true when a failure already sent is sent again.
	Reminder bool
	// Time is when the sync ended.
	Time time.Time

	// fingerprint identifies a failure for the rate limit; empty otherwise.
	fingerprint string
}

// syncOutcome is what one sync did, gathered for its notifications.
type syncOutcome struct {
	// commit describes the fetched commit (zero when the fetch failed).
	commit CommitInfo
	// changes is the change set of the apply (nil when nothing was applied).
	changes *ssa.ChangeSet
	// pruned are the objects deleted because they left Git.
	pruned []sluicev1beta1.GitSyncInventoryEntry
}

// decideEvents returns the events of one sync from the status before and
// after it, what it changed and the drift it corrected. It is pure: the
// routing, the rate limit and the recovery are decided per alert by
// routeEvents. A failure yields one event; a success the application of a
// new revision; both may add the drift corrected and the objects pruned.
func decideEvents(gs *sluicev1beta1.GitSync, prev, cur *sluicev1beta1.GitSyncStatus, out syncOutcome, drift []Drift, now time.Time) []SyncEvent {
	base := SyncEvent{URL: redactURL(gs.Spec.URL), Time: now, Commit: out.commit}
	ref := SelectRef(gs.Spec.Ref)
	base.RefKind, base.Ref = string(ref.Kind), ref.Value
	created, configured := countChanges(out.changes)
	base.Created, base.Configured, base.Pruned = created, configured, len(out.pruned)

	var events []SyncEvent
	if cur.LastFailureReason != "" {
		events = append(events, failureEvent(base, cur))
	} else if cur.LastAppliedRevision != "" && cur.LastAppliedRevision != prev.LastAppliedRevision {
		e := base
		e.Type, e.Severity, e.Revision, e.NewRevision = EventRevisionApplied, SeverityInfo, cur.LastAppliedRevision, true
		e.Message = appliedMessage("Applied revision", e)
		events = append(events, e)
	}
	if len(drift) > 0 {
		e := base
		e.Type, e.Severity, e.Revision = EventDriftCorrected, SeverityInfo, cur.LastAppliedRevision
		subjects := make([]string, len(drift))
		for i, d := range drift {
			subjects[i] = d.Subject + " (" + d.Action + ")"
		}
		e.Objects = boundObjects(subjects)
		e.Message = fmt.Sprintf("Corrected drift of %d %s changed outside Git: %s", len(drift), plural(len(drift), "object"), strings.Join(e.Objects, ", "))
		events = append(events, e)
	}
	if len(out.pruned) > 0 {
		e := base
		e.Type, e.Severity, e.Revision = EventObjectsPruned, SeverityInfo, cur.LastAttemptedRevision
		subjects := make([]string, len(out.pruned))
		for i, p := range out.pruned {
			subjects[i] = inventorySubject(p)
		}
		e.Objects = boundObjects(subjects)
		e.Message = fmt.Sprintf("Pruned %d %s removed from Git: %s", len(out.pruned), plural(len(out.pruned), "object"), strings.Join(e.Objects, ", "))
		events = append(events, e)
	}
	return events
}

// failureEvent describes the failure recorded in cur.
func failureEvent(base SyncEvent, cur *sluicev1beta1.GitSyncStatus) SyncEvent {
	e := base
	e.Severity = SeverityError
	e.Revision = cur.LastAttemptedRevision
	e.FailureReason = cur.LastFailureReason
	e.Error = scrubCredentials(cur.LastFailureMessage)
	switch cur.LastFailureReason {
	case ReasonHealthCheckFailed:
		e.Type = EventHealthCheckFailed
	case ReasonDecryptionFailed:
		e.Type = EventDecryptionFailed
	case ReasonHelmUpgradeFailed:
		e.Type = EventHelmUpgradeFailed
	case ReasonVerificationFailed:
		e.Type = ReasonVerificationFailed
		if c := apimeta.FindStatusCondition(cur.Conditions, sluicev1beta1.SourceVerifiedCondition); c != nil && c.Status != "True" {
			e.Type = c.Reason
		}
	default:
		e.Type = EventSyncFailed
	}
	e.Message = e.FailureReason + ": " + firstLine(e.Error)
	e.fingerprint = fingerprint(e.FailureReason, e.Revision, e.Error)
	return e
}

// recoveredEvent is sent to an alert that was told about a failure when a
// sync succeeds again; it carries the revision applied.
func recoveredEvent(gs *sluicev1beta1.GitSync, cur *sluicev1beta1.GitSyncStatus, events []SyncEvent, now time.Time) SyncEvent {
	for _, e := range events {
		if e.Type == EventRevisionApplied {
			e.Type = EventRecovered
			e.Message = appliedMessage("Recovered: applied revision", e)
			return e
		}
	}
	ref := SelectRef(gs.Spec.Ref)
	e := SyncEvent{Type: EventRecovered, Severity: SeverityInfo, URL: redactURL(gs.Spec.URL), RefKind: string(ref.Kind), Ref: ref.Value,
		Revision: cur.LastAppliedRevision, Time: now}
	e.Message = "Recovered: revision " + cur.LastAppliedRevision + " is applied"
	return e
}

// appliedMessage is "<prefix> <revision>: <subject> (<changes>)".
func appliedMessage(prefix string, e SyncEvent) string {
	msg := prefix + " " + e.Revision
	if e.Commit.Subject != "" {
		msg += ": " + e.Commit.Subject
	}
	return msg + " (" + ChangesText(e.Created, e.Configured, e.Pruned) + ")"
}

// ChangesText is "1 created, 2 configured, 0 pruned".
func ChangesText(created, configured, pruned int) string {
	return fmt.Sprintf("%d created, %d configured, %d pruned", created, configured, pruned)
}

func countChanges(cs *ssa.ChangeSet) (created, configured int) {
	if cs == nil {
		return 0, 0
	}
	for _, e := range cs.Entries {
		switch e.Action {
		case ssa.CreatedAction:
			created++
		case ssa.ConfiguredAction:
			configured++
		}
	}
	return created, configured
}

func inventorySubject(e sluicev1beta1.GitSyncInventoryEntry) string {
	if e.Namespace == "" {
		return e.Kind + "/" + e.Name
	}
	return e.Kind + "/" + e.Namespace + "/" + e.Name
}

func boundObjects(subjects []string) []string {
	if len(subjects) <= maxEventObjects {
		return subjects
	}
	out := append([]string{}, subjects[:maxEventObjects]...)
	return append(out, fmt.Sprintf("… and %d more", len(subjects)-maxEventObjects))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Volatile parts of failure messages, which differ between two syncs that
// fail for the same cause: times, durations and ephemeral source ports.
var (
	volatileTime     = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)
	volatileDuration = regexp.MustCompile(`\b(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+\b`)
	volatilePort     = regexp.MustCompile(`:\d+->`)
)

// normalizeFailure removes the volatile parts of a failure message.
func normalizeFailure(msg string) string {
	msg = volatileTime.ReplaceAllString(msg, "<time>")
	msg = volatileDuration.ReplaceAllString(msg, "<duration>")
	return volatilePort.ReplaceAllString(msg, ":<port>->")
}

// fingerprint identifies a distinct failure: its reason, the revision it
// happened at (a new broken commit is news) and its message without
// volatile parts.
func fingerprint(reason, revision, msg string) string {
	sum := sha256.Sum256([]byte(reason + "\x00" + revision + "\x00" + normalizeFailure(msg)))
	return hex.EncodeToString(sum[:16])
}

// userInfo matches the user information of URLs in free text.
var userInfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@`)

// scrubCredentials removes the user information (user:token@) of every
// URL in s: Git errors may quote the URL they failed on.
func scrubCredentials(s string) string {
	return userInfo.ReplaceAllString(s, "$1")
}

// redactURL returns the repository URL without user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return scrubCredentials(raw)
	}
	u.User = nil
	return u.String()
}
