package notify

import (
	"context"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// generic posts the event as JSON, with the token (if any) as a bearer token.
type generic struct{ p *poster }

// Post sends the event.
func (n *generic) Post(ctx context.Context, e Event) error {
	_, err := n.p.postJSON(ctx, genericPayload(e))
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
