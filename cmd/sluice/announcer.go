package main

import (
	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// announcer hands the engine's announcements to the notification dispatcher.
type announcer struct{ d *notify.Dispatcher }

var _ canary.Announcer = announcer{}

// Announce implements canary.Announcer; it never blocks. The engine calls it
// once per transition, after the status patch that records it, so the
// Dispatcher needs no de-duplication of its own.
func (a announcer) Announce(c *sluicev1beta1.Canary, e canary.Event, severity string, failed []sluicev1beta1.CheckResult) {
	a.d.Dispatch(c, notify.Event{Canary: c, Severity: severity, Reason: e.Reason, Message: e.Message, Failed: failed})
}
