package canary

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// admissionTTL is how long an admission is counted while the cache has not
// yet caught up with the admitted Canary's new phase.
const admissionTTL = time.Minute

// slots enforces --max-concurrent-rollouts. Which Canaries hold a slot is
// read from their status in the cache; the admissions map only bridges the
// moment between a status patch and the cache seeing it, so two reconciles
// cannot both take the last slot.
type slots struct {
	limit    int
	mu       sync.Mutex
	admitted map[types.NamespacedName]time.Time
}

func newSlots(limit int) *slots {
	return &slots{limit: limit, admitted: map[types.NamespacedName]time.Time{}}
}

// acquire locks admission for a Canary that may start a release and tells
// whether a slot is free for it: fewer active rollouts than the limit once
// the Canaries waiting longer have been served. Call the returned release
// with whether the Canary started.
func (s *slots) acquire(ctx context.Context, r client.Reader, c *sluicev1beta1.Canary, now time.Time) (bool, func(started bool), error) {
	if s.limit <= 0 || holdsSlot(c.Status.Phase) {
		return true, func(bool) {}, nil
	}
	s.mu.Lock()
	release := func(started bool) {
		if started {
			s.admitted[client.ObjectKeyFromObject(c)] = now
		}
		s.mu.Unlock()
	}
	// Read-only: list the cache's objects without deep-copying all of them
	// on every reconcile of a Canary that holds no slot.
	list := &sluicev1beta1.CanaryList{}
	if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		release(false)
		return false, nil, err
	}
	self := client.ObjectKeyFromObject(c)
	if _, ok := s.admitted[self]; ok {
		return true, release, nil // admitted already; the cache has not caught up
	}
	active := 0
	var waiting []*sluicev1beta1.Canary
	for i := range list.Items {
		o := &list.Items[i]
		key := client.ObjectKeyFromObject(o)
		if t, ok := s.admitted[key]; ok && (holdsSlot(o.Status.Phase) || now.Sub(t) > admissionTTL) {
			delete(s.admitted, key) // the cache caught up, or the admission expired
		}
		switch {
		case holdsSlot(o.Status.Phase):
			active++
		case s.admitted[key] != time.Time{}:
			active++
		case o.Status.Phase == sluicev1beta1.CanaryPhaseWaiting && waitingForSlot(o) && key != self:
			waiting = append(waiting, o)
		}
	}
	// Oldest first: only the Canaries that have waited longer go before this one.
	since := waitingSince(c, now)
	ahead := 0
	for _, w := range waiting {
		ws := waitingSince(w, now)
		if ws.Before(since) || (ws.Equal(since) && w.Namespace+"/"+w.Name < c.Namespace+"/"+c.Name) {
			ahead++
		}
	}
	return active+ahead < s.limit, release, nil
}

func waitingForSlot(c *sluicev1beta1.Canary) bool {
	cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ProgressingCondition)
	return cond != nil && cond.Reason == "ConcurrencyLimit"
}

// waitingSince is when a Canary started waiting for a slot (now for one not waiting yet).
func waitingSince(c *sluicev1beta1.Canary, now time.Time) time.Time {
	if c.Status.Phase == sluicev1beta1.CanaryPhaseWaiting && waitingForSlot(c) && c.Status.LastTransitionTime != nil {
		return c.Status.LastTransitionTime.Time
	}
	return now
}
