package notify

import (
	"context"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// generic posts the event as JSON, with the token (if any) as a bearer token.
type generic struct{ p *poster }

// Post sends the event.
func (n *generic) Post(ctx context.Context, e Event) error {
	var body any = genericPayload(e)
	if e.GitSync != nil {
		body = genericGitSyncPayload(e)
	}
	if e.Pipeline != nil {
		body = genericPipelinePayload(e)
	}
	_, err := n.p.postJSON(ctx, body)
	return err
}

// GenericPayload is the JSON body posted by the generic provider.
type GenericPayload struct {
	Canary       string                      `json:"canary"`
	Namespace    string                      `json:"namespace"`
	Phase        string                      `json:"phase"`
	Reason       string                      `json:"reason"`
	Message      string                      `json:"message"`
	Severity     string                      `json:"severity"`
	Weight       int32                       `json:"weight"`
	FailedChecks int32                       `json:"failedChecks"`
	Revision     string                      `json:"revision"`
	Checks       []sluicev1beta1.CheckResult `json:"checks"`
	Timestamp    string                      `json:"timestamp"`
}

// genericPayload builds the payload of an event.
func genericPayload(e Event) GenericPayload {
	c := e.Canary
	if c == nil {
		c = &sluicev1beta1.Canary{}
	}
	checks := e.Failed
	if checks == nil {
		checks = []sluicev1beta1.CheckResult{}
	}
	return GenericPayload{
		Canary:       c.Name,
		Namespace:    c.Namespace,
		Phase:        string(c.Status.Phase),
		Reason:       e.Reason,
		Message:      e.Message,
		Severity:     normSeverity(e.Severity),
		Weight:       c.Status.CanaryWeight,
		FailedChecks: c.Status.FailedChecks,
		Revision:     c.Status.Revision,
		Checks:       checks,
		Timestamp:    e.Time.UTC().Format("2006-01-02T15:04:05Z07:00"),
	}
}

// GenericGitSyncPayload is the JSON body posted by the generic provider for
// an event of a GitSync.
type GenericGitSyncPayload struct {
	GitSync       string   `json:"gitSync"`
	Namespace     string   `json:"namespace"`
	Reason        string   `json:"reason"`
	Message       string   `json:"message"`
	Severity      string   `json:"severity"`
	URL           string   `json:"url"`
	RefKind       string   `json:"refKind"`
	Ref           string   `json:"ref"`
	Revision      string   `json:"revision"`
	CommitURL     string   `json:"commitURL,omitempty"`
	Subject       string   `json:"subject,omitempty"`
	Author        string   `json:"author,omitempty"`
	Created       int      `json:"created"`
	Configured    int      `json:"configured"`
	Pruned        int      `json:"pruned"`
	Objects       []string `json:"objects"`
	FailureReason string   `json:"failureReason,omitempty"`
	Error         string   `json:"error,omitempty"`
	Reminder      bool     `json:"reminder"`
	Timestamp     string   `json:"timestamp"`
}

// genericGitSyncPayload builds the payload of a GitSync event; the URL and
// the texts lose any user information of URLs.
func genericGitSyncPayload(e Event) GenericGitSyncPayload {
	gi := e.GitSync
	repo := redactUserInfo(gi.URL)
	objects := gi.Objects
	if objects == nil {
		objects = []string{}
	}
	return GenericGitSyncPayload{
		GitSync: gi.Name, Namespace: gi.Namespace, Reason: e.Reason, Message: scrubUserInfo(e.Message), Severity: normSeverity(e.Severity),
		URL: repo, RefKind: gi.RefKind, Ref: gi.Ref, Revision: gi.Revision, CommitURL: commitURL(repo, shaOf(gi.Revision)),
		Subject: gi.Subject, Author: gi.Author, Created: gi.Created, Configured: gi.Configured, Pruned: gi.Pruned, Objects: objects,
		FailureReason: gi.FailureReason, Error: scrubUserInfo(gi.Error), Reminder: gi.Reminder,
		Timestamp: e.Time.UTC().Format("2006-01-02T15:04:05Z07:00"),
	}
}
