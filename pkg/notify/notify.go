// Package notify sends release notifications of Canaries to chat and
// webhook providers (AlertProviders): Slack, Microsoft Teams, Discord,
// Google Chat, Rocket.Chat and a generic JSON webhook.
//
// Notifiers are built by New from an AlertProvider and its Secret; the
// Dispatcher routes a Canary's events to its analysis.alerts by severity and
// delivers them in the background, so the release engine never waits for a
// chat service.
package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Severities of events and of analysis.alerts[].severity.
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// Event is one notification about a Canary or a GitSync.
type Event struct {
	// Canary is the Canary with the status the event describes (phase,
	// canaryWeight, failedChecks, revision, lastAppliedSpec, history).
	Canary *sluicev1beta1.Canary
	// GitSync, when set, makes this an event of a GitSync (and Canary is
	// ignored): Reason is the event type, e.g. SyncFailed.
	GitSync *GitSyncInfo
	// Pipeline, when set, makes this an event of a Pipeline's stage (and
	// Canary is ignored): Reason is the event type, e.g. VerificationFailed.
	Pipeline *PipelineInfo
	// Severity is info, warn or error; empty means info.
	Severity string
	// Reason is a short machine-readable cause, e.g. Failed or CheckFailed.
	Reason string
	// Message is the human-readable text of the event.
	Message string
	// Failed are the failed checks of the step, with their value and range.
	Failed []sluicev1beta1.CheckResult
	// Time is when the event happened; zero means when it was dispatched.
	Time time.Time
	// Cluster names the cluster (--cluster-name), shown first as a field
	// as Flagger does; empty leaves it out. The Dispatcher sets it.
	Cluster string
}

// Notifier posts events to one provider.
type Notifier interface {
	Post(ctx context.Context, e Event) error
}

// severityRank orders severities; empty and unknown values count as info.
func severityRank(s string) int {
	switch s {
	case SeverityWarn:
		return 1
	case SeverityError:
		return 2
	}
	return 0
}

// Accepts tells whether an alert of severity alertSeverity receives an event
// of severity eventSeverity: info receives everything, warn receives warn
// and error, error receives error only. An empty severity is info (Flagger
// never fired alerts with an empty severity; that is fixed here).
func Accepts(alertSeverity, eventSeverity string) bool {
	return severityRank(eventSeverity) >= severityRank(alertSeverity)
}

// normSeverity returns the severity with the default applied.
func normSeverity(s string) string {
	switch s {
	case SeverityWarn, SeverityError:
		return s
	}
	return SeverityInfo
}

// field is one labelled value of a message.
type field struct {
	Title string
	Value string
	// URL, when set, links the value (a commit, a repository).
	URL string
}

// message is the provider-neutral content of a notification, built once
// from an Event and rendered by each provider.
type message struct {
	// Title names the Canary as <name>.<namespace>.
	Title string
	// Headline is the title and the phase, e.g. "podinfo.test: Failed".
	Headline string
	Text     string
	Severity string
	Reason   string
	Fields   []field
	// Checks describe the failed checks (of a Canary) or the objects
	// corrected or pruned (of a GitSync), one line each, under ListTitle.
	Checks    []string
	ListTitle string
	// Subtitle is the short state under the title (the phase of a Canary).
	Subtitle string
	// Code is an error to show verbatim (a failed sync).
	Code string
	Time time.Time
	// Fallback is a one-line plain-text summary.
	Fallback string
}

// newMessage builds the content of a notification.
func newMessage(e Event) message {
	m := eventMessage(e)
	if e.Cluster != "" {
		m.Fields = append([]field{{Title: "Cluster", Value: e.Cluster}}, m.Fields...)
	}
	return m
}

// eventMessage builds the content of a Canary's, GitSync's or Pipeline's event.
func eventMessage(e Event) message {
	if e.GitSync != nil {
		return gitSyncMessage(e)
	}
	if e.Pipeline != nil {
		return pipelineMessage(e)
	}
	c := e.Canary
	if c == nil {
		c = &sluicev1beta1.Canary{}
	}
	title := c.Name + "." + c.Namespace
	phase := string(c.Status.Phase)
	m := message{
		Title:     title,
		Headline:  title,
		Text:      e.Message,
		Severity:  normSeverity(e.Severity),
		Reason:    e.Reason,
		ListTitle: "Failed checks",
		Subtitle:  orDash(phase),
		Time:      e.Time.UTC(),
	}
	if phase != "" {
		m.Headline = title + ": " + phase
	}
	if m.Text == "" {
		m.Text = e.Reason
	}
	m.Fallback = m.Headline
	if m.Text != "" {
		m.Fallback += ": " + m.Text
	}
	m.Fields = []field{
		{Title: "Canary", Value: c.Name},
		{Title: "Namespace", Value: c.Namespace},
		{Title: "Phase", Value: orDash(phase)},
		{Title: "Weight", Value: fmt.Sprintf("%d%%", c.Status.CanaryWeight)},
		{Title: "Failed checks", Value: fmt.Sprintf("%d", c.Status.FailedChecks)},
		{Title: "Revision", Value: orDash(c.Status.Revision)},
	}
	for _, f := range e.Failed {
		m.Checks = append(m.Checks, checkLine(f))
	}
	return m
}

// checkLine describes a failed check: its name, kind, outcome and message
// (for metrics the message holds the value and the range).
func checkLine(f sluicev1beta1.CheckResult) string {
	msg := strings.TrimSpace(strings.TrimPrefix(f.Message, f.Name+" "))
	if msg == "" && f.Value != nil {
		msg = "value " + *f.Value
	}
	head := f.Name
	if f.Kind != "" {
		head += " (" + f.Kind + ")"
	}
	if f.Outcome != "" && f.Outcome != sluicev1beta1.CheckFailed {
		head += " " + string(f.Outcome)
	}
	if msg == "" {
		return head
	}
	return head + ": " + msg
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}
