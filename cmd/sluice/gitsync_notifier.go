package main

import (
	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// gitSyncNotifier hands the events of GitSyncs' spec.alerts to the
// notification Dispatcher the Canary engine uses.
type gitSyncNotifier struct{ d *notify.Dispatcher }

var _ gitsync.Notifier = gitSyncNotifier{}

// NotifyGitSync implements gitsync.Notifier; it never blocks. The GitSync
// reconciler routes and rate-limits (status.alerts) and calls it once per
// delivery after the status patch that records it.
func (n gitSyncNotifier) NotifyGitSync(gs *sluicev1beta1.GitSync, d gitsync.Delivery) {
	e := d.Event
	n.d.DispatchTo(d.Provider, d.Alert, notify.Event{
		Severity: e.Severity,
		Reason:   e.Type,
		Message:  e.Message,
		Time:     e.Time,
		GitSync: &notify.GitSyncInfo{
			Name: gs.Name, Namespace: gs.Namespace,
			URL: e.URL, RefKind: e.RefKind, Ref: e.Ref, Revision: e.Revision,
			Subject: e.Commit.Subject, Author: e.Commit.Author,
			Created: e.Created, Configured: e.Configured, Pruned: e.Pruned,
			ShowChanges: e.NewRevision,
			Objects:     e.Objects, FailureReason: e.FailureReason, Error: e.Error, Reminder: e.Reminder,
		},
	})
}
