package canary

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// admissionTTL is how long an admission is counted while the cache has not
// yet caught up with the admitted Canary's new phase.
const admissionTTL = time.Minute

// slots enforces --max-concurrent-rollouts. Which Canaries hold a slot is
// read from their status in the cache; the admissions map only bridges the
// moment between a reservation and the cache seeing the status patch that
// started the release, so two reconciles cannot both take the last slot.
//
// The mutex guards the admissions map and nothing else: the cache is listed
// before it is taken, and no webhook, check or API write ever runs under it,
// so a slow reconcile (a confirm-rollout gate answering in seconds) never
// delays the reconciles of other Canaries.
type slots struct {
	limit    int
	mu       sync.Mutex
	admitted map[types.NamespacedName]time.Time
	// informers is the manager's cache, whose Canary informer's store
	// list reads; nil reads with the reconciler's client instead.
	informers informerGetter
}

// informerGetter is the part of the manager's cache that slots reads.
type informerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...ctrlcache.InformerGetOption) (ctrlcache.Informer, error)
}

func newSlots(limit int) *slots {
	return &slots{limit: limit, admitted: map[types.NamespacedName]time.Time{}}
}

// free tells whether a slot is free for a Canary that may start a release:
// fewer active rollouts than the limit once the Canaries waiting longer have
// been served. It reserves nothing: Decide uses it to choose between
// waiting and starting, and reserve confirms the start.
func (s *slots) free(ctx context.Context, r client.Reader, c *sluicev1beta1.Canary, now time.Time) (bool, error) {
	if s.limit <= 0 || holdsSlot(c.Status.Phase) {
		return true, nil
	}
	list, err := s.list(ctx, r)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countFree(list, c, now), nil
}

// reserve takes a slot for a Canary whose decision starts a release, when
// one is still free (another reconcile may have taken it since free). Call
// the returned release once the outcome is known: a release that did not
// start (the patch failed) gives the slot back; one that started keeps it
// until the cache shows the Canary's new phase.
func (s *slots) reserve(ctx context.Context, r client.Reader, c *sluicev1beta1.Canary, now time.Time) (bool, func(started bool), error) {
	if s.limit <= 0 || holdsSlot(c.Status.Phase) {
		return true, func(bool) {}, nil
	}
	list, err := s.list(ctx, r)
	if err != nil {
		return false, nil, err
	}
	key := client.ObjectKeyFromObject(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.admitted[key]; ok {
		return true, func(bool) {}, nil // admitted already; the cache has not caught up
	}
	if !s.countFree(list, c, now) {
		return false, nil, nil
	}
	s.admitted[key] = now
	release := func(started bool) {
		if started {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.admitted[key].Equal(now) {
			delete(s.admitted, key)
		}
	}
	return true, release, nil
}

// list reads the Canaries from the cache, read-only. It runs for every
// reconcile of a Canary that waits to start a release, so a release of N
// Canaries lists N times: from the informer's store it costs a slice of
// pointers, where a CanaryList, even without deep copies, copies every
// Canary's struct (about 1.1 KB each, 1 MB per list at 1,000 Canaries;
// docs/scale.md "Memory").
func (s *slots) list(ctx context.Context, r client.Reader) ([]*sluicev1beta1.Canary, error) {
	if s.informers != nil {
		inf, err := s.informers.GetInformer(ctx, &sluicev1beta1.Canary{})
		if err != nil {
			return nil, err
		}
		// A multi-namespace cache's informer has no single store: list below.
		if store, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
			items := store.GetStore().List()
			out := make([]*sluicev1beta1.Canary, 0, len(items))
			for _, o := range items {
				if c, ok := o.(*sluicev1beta1.Canary); ok {
					out = append(out, c)
				}
			}
			return out, nil
		}
	}
	list := &sluicev1beta1.CanaryList{}
	if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]*sluicev1beta1.Canary, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// countFree does the bookkeeping; the caller holds s.mu.
func (s *slots) countFree(list []*sluicev1beta1.Canary, c *sluicev1beta1.Canary, now time.Time) bool {
	self := client.ObjectKeyFromObject(c)
	if _, ok := s.admitted[self]; ok {
		return true
	}
	active := 0
	var waiting []*sluicev1beta1.Canary
	for _, o := range list {
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
	return active+ahead < s.limit
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
