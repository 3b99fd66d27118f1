package gitsync

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The GitSync controller reads the AlertProviders of spec.alerts through
// the notification Dispatcher (the Dispatcher reads their Secrets).
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch

// Notifier delivers the events of GitSyncs to AlertProviders
// (cmd/sluice hands them to the notify.Dispatcher). NotifyGitSync must not
// block: the reconciler calls it after the status patch that records the
// delivery, once per delivery.
type Notifier interface {
	NotifyGitSync(gs *sluicev1beta1.GitSync, d Delivery)
}

// notifiedState is what this process last wrote about the notifications
// of one GitSync. The informer cache may not show that write yet when the
// next sync runs (a retry after a few milliseconds, a drift watch): taking
// the cache for the truth would send the same event twice. Only the leader
// writes GitSync status, so its own last write is the newest; after a
// restart the status is the truth.
type notifiedState struct {
	// uid tells a GitSync from a new one of the same name.
	uid      types.UID
	revision string
	alerts   []sluicev1beta1.GitSyncAlertStatus
}

// notifiedMemory holds the notifiedState of every GitSync.
type notifiedMemory struct {
	mu sync.Mutex
	m  map[types.NamespacedName]notifiedState
}

func (n *notifiedMemory) get(key types.NamespacedName) (notifiedState, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.m[key]
	return s, ok
}

func (n *notifiedMemory) set(key types.NamespacedName, s notifiedState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[types.NamespacedName]notifiedState{}
	}
	n.m[key] = s
}

func (n *notifiedMemory) forget(key types.NamespacedName) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, key)
}

// alertDeliveries decides the notifications of a sync and records them in
// status (written by the same patch as the sync's outcome). Without a
// Notifier there are none and status.alerts is left alone.
func (r *GitSyncReconciler) alertDeliveries(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, out syncOutcome, drift []Drift) []Delivery {
	if r.Notifier == nil {
		return nil
	}
	prev := gs.Status.DeepCopy()
	if mem, ok := r.notified.get(types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name}); ok && mem.uid == gs.UID {
		prev.LastAppliedRevision = mem.revision
		status.Alerts = nil
		for _, a := range mem.alerts {
			status.Alerts = append(status.Alerts, *a.DeepCopy())
		}
	}
	now := r.clock().Now()
	return routeEvents(gs, status, decideEvents(gs, prev, status, out, drift, now), now)
}

// notify hands the deliveries to the Notifier once the status that
// records them is written, and remembers that write (see notifiedState).
// A crash between the two loses these messages (at most one per alert),
// and never sends one twice.
func (r *GitSyncReconciler) notify(gs *sluicev1beta1.GitSync, ds []Delivery) {
	if r.Notifier == nil {
		return
	}
	alerts := make([]sluicev1beta1.GitSyncAlertStatus, len(gs.Status.Alerts))
	for i := range gs.Status.Alerts {
		gs.Status.Alerts[i].DeepCopyInto(&alerts[i])
	}
	r.notified.set(types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name}, notifiedState{uid: gs.UID, revision: gs.Status.LastAppliedRevision, alerts: alerts})
	for _, d := range ds {
		r.Notifier.NotifyGitSync(gs, d)
	}
}
