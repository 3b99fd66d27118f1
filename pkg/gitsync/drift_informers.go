package gitsync

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// objKey names an applied object regardless of its API version.
type objKey struct {
	Group, Kind, Namespace, Name string
}

func entryKey(e sluicev1beta1.GitSyncInventoryEntry) objKey {
	return objKey{Group: e.Group, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
}

// brokenRetry is how long a kind whose list or watch was refused (RBAC, a
// removed CRD) stays unwatched before a full sync tries again. Its
// GitSyncs meanwhile compare everything at every interval, as before.
const brokenRetry = 10 * time.Minute

// watchedSync is what the last full sync of one GitSync applied, in this
// process. It only saves work: status holds the progress, and a GitSync
// unknown here (after a restart) gets a full comparison.
type watchedSync struct {
	generation int64
	revision   string
	digest     string
	// fullAt is when the last full comparison ran (the safety net's clock).
	fullAt  time.Time
	objects map[objKey]bool
	// hashes are the objects as applied (objectHashes), so that a new
	// revision can be applied by sending only what changed in Git.
	hashes map[objKey]string
	// request is the sync request (sluice.dev/sync-requested-at) this sync
	// handled: a reconcile that reads the GitSync from a cache that has not
	// seen the status yet must not take it for a new request.
	request string
	// kinds are the resources of the objects, and their kinds.
	kinds map[schema.GroupVersionResource]schema.GroupKind
	// unmapped is true when a kind of the inventory has no REST mapping:
	// it cannot be watched, so every sync compares everything.
	unmapped bool
	// dirty are the objects a watch saw changed or deleted by someone else
	// since the last sync took them.
	dirty map[objKey]bool
}

// kindInformer is one metadata-only informer: the objects of one resource
// that carry gitsync.sluice.dev/name, shared by every GitSync applying it.
type kindInformer struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	// broken is set when the list or watch was refused.
	broken   bool
	brokenAt time.Time
}

// driftWatcher starts informers for the kinds that local GitSyncs applied,
// stops them when no GitSync applies the kind any more, and enqueues a
// GitSync when one of its objects is changed or deleted by someone else.
// Remote GitSyncs (spec.kubeConfig) are not watched.
type driftWatcher struct {
	client metadata.Interface
	mapper meta.RESTMapper

	mu sync.Mutex
	// running is true while the controller runs: informers start only then.
	running   bool
	queue     workqueue.TypedRateLimitingInterface[reconcile.Request]
	informers map[schema.GroupVersionResource]*kindInformer
	syncs     map[types.NamespacedName]*watchedSync
}

func newDriftWatcher(client metadata.Interface, mapper meta.RESTMapper) *driftWatcher {
	return &driftWatcher{
		client:    client,
		mapper:    mapper,
		informers: map[schema.GroupVersionResource]*kindInformer{},
		syncs:     map[types.NamespacedName]*watchedSync{},
	}
}

// source is added to the GitSync controller: it hands the watcher the
// controller's queue when the controller starts, and stops every informer
// when it stops, so informers run only while the controller does (on the
// leader).
func (w *driftWatcher) source() source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.queue, w.running = q, true
		go func() {
			<-ctx.Done()
			w.mu.Lock()
			defer w.mu.Unlock()
			w.running = false
			for gvr, ki := range w.informers {
				ki.cancel()
				delete(w.informers, gvr)
			}
		}()
		return nil
	})
}

// applied records the outcome of a full sync of key and makes sure the
// kinds it applied are watched; informers no GitSync needs are stopped.
// Objects reported dirty since the full sync began are kept.
func (w *driftWatcher) applied(ctx context.Context, key types.NamespacedName, generation int64, revision, digest string, inv []sluicev1beta1.GitSyncInventoryEntry, at time.Time) {
	w.appliedObjects(ctx, key, generation, revision, digest, inv, nil, "", at, true)
}

// appliedObjects records a sync that applied inv, whose objects hash to
// hashes. full is false when only the objects that changed were sent
// (applyChangedOnly): the safety net's clock then keeps running from the
// last full comparison.
func (w *driftWatcher) appliedObjects(ctx context.Context, key types.NamespacedName, generation int64, revision, digest string,
	inv []sluicev1beta1.GitSyncInventoryEntry, hashes map[objKey]string, request string, at time.Time, full bool) {
	if w == nil {
		return
	}
	st := &watchedSync{generation: generation, revision: revision, digest: digest, fullAt: at, hashes: hashes, request: request,
		objects: make(map[objKey]bool, len(inv)), dirty: map[objKey]bool{},
		kinds: map[schema.GroupVersionResource]schema.GroupKind{}}
	for _, e := range inv {
		st.objects[entryKey(e)] = true
		m, err := w.mapper.RESTMapping(schema.GroupKind{Group: e.Group, Kind: e.Kind}, e.Version)
		if err != nil {
			st.unmapped = true
			continue
		}
		st.kinds[m.Resource] = m.GroupVersionKind.GroupKind()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.syncs[key]; old != nil {
		if !full {
			st.fullAt = old.fullAt
		}
		for k := range old.dirty {
			if st.objects[k] {
				st.dirty[k] = true
			}
		}
	}
	w.syncs[key] = st
	for gvr, gk := range st.kinds {
		w.startLocked(ctx, gvr, gk)
	}
	w.stopUnusedLocked()
}

// forget drops what is known of key (deleted, suspended, remote or
// failing GitSyncs); its next sync compares everything.
func (w *driftWatcher) forget(key types.NamespacedName) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.syncs[key]; !ok {
		return
	}
	delete(w.syncs, key)
	w.stopUnusedLocked()
}

// take returns what is known of key and the objects reported dirty,
// clearing them: the caller either re-applies them or compares everything.
// It returns nil when key is unknown.
func (w *driftWatcher) take(key types.NamespacedName) (*watchedSync, []objKey) {
	if w == nil {
		return nil, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.syncs[key]
	if st == nil {
		return nil, nil
	}
	dirty := make([]objKey, 0, len(st.dirty))
	for k := range st.dirty {
		dirty = append(dirty, k)
	}
	st.dirty = map[objKey]bool{}
	copied := *st
	return &copied, dirty
}

// watching tells whether every kind of st has a synced, working informer:
// only then can a sync trust the watches and skip the full comparison.
func (w *driftWatcher) watching(st *watchedSync) bool {
	if st.unmapped {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for gvr := range st.kinds {
		ki := w.informers[gvr]
		if ki == nil || ki.broken || !ki.informer.HasSynced() {
			return false
		}
	}
	return true
}

// startLocked starts the informer of gvr unless it runs (or was refused
// less than brokenRetry ago). Nothing starts before the controller does.
// The informer keeps ctx's values (its logger) but not its end: it runs
// until no GitSync needs it or the controller stops, not until the sync
// that needed it ends.
func (w *driftWatcher) startLocked(ctx context.Context, gvr schema.GroupVersionResource, gk schema.GroupKind) {
	if !w.running {
		return
	}
	if ki := w.informers[gvr]; ki != nil {
		if !ki.broken || time.Since(ki.brokenAt) < brokenRetry {
			return
		}
		ki.cancel()
		delete(w.informers, gvr)
	}
	inf := metadatainformer.NewFilteredMetadataInformer(w.client, gvr, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = sluicev1beta1.GitSyncNameLabel }).Informer()
	log := ctrl.LoggerFrom(ctx).WithValues("resource", gvr.String())
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ki := &kindInformer{informer: inf, cancel: cancel}
	_ = inf.SetTransform(slimMetadata)
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			log.Info("Not watching for drift: the list or watch was refused; GitSyncs applying it compare everything each interval", "error", err.Error())
			w.mu.Lock()
			ki.broken, ki.brokenAt = true, time.Now()
			w.mu.Unlock()
			cancel()
			return
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*metav1.PartialObjectMetadata)
			n, ok2 := newObj.(*metav1.PartialObjectMetadata)
			if ok1 && ok2 && changedByOthers(o, n) {
				w.flag(gk, n)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(*metav1.PartialObjectMetadata); ok {
				w.flag(gk, o)
			}
		},
	})
	log.V(1).Info("Watching for drift")
	go inf.RunWithContext(ictx)
	w.informers[gvr] = ki
}

// stopUnusedLocked stops the informers that no known GitSync needs.
func (w *driftWatcher) stopUnusedLocked() {
	used := map[schema.GroupVersionResource]bool{}
	for _, st := range w.syncs {
		for gvr := range st.kinds {
			used[gvr] = true
		}
	}
	for gvr, ki := range w.informers {
		if !used[gvr] {
			ki.cancel()
			delete(w.informers, gvr)
		}
	}
}

// flag marks the object dirty for the GitSync that applied it, if that
// GitSync still applies it, and enqueues that GitSync. An object removed
// from Git (kept with prune disabled, or being pruned) is not flagged.
func (w *driftWatcher) flag(gk schema.GroupKind, o *metav1.PartialObjectMetadata) {
	k := objKey{Group: gk.Group, Kind: gk.Kind, Namespace: o.Namespace, Name: o.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	owner, ok := types.NamespacedName{Namespace: o.Labels[sluicev1beta1.GitSyncNamespaceLabel], Name: o.Labels[sluicev1beta1.GitSyncNameLabel]}, false
	if st := w.syncs[owner]; st != nil && st.objects[k] {
		ok = true
	} else {
		// The labels were removed (the object left the selector): find
		// the GitSync that applied it.
		for key, st := range w.syncs {
			if st.objects[k] {
				owner, ok = key, true
				break
			}
		}
	}
	if !ok {
		return
	}
	w.syncs[owner].dirty[k] = true
	if w.queue != nil {
		w.queue.Add(reconcile.Request{NamespacedName: owner})
	}
}

// pruning stops watching the objects of key that its sync is about to
// delete: their deletion is not drift, and must not enqueue the GitSync
// again.
func (w *driftWatcher) pruning(key types.NamespacedName, stale []sluicev1beta1.GitSyncInventoryEntry) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.syncs[key]
	if st == nil {
		return
	}
	for _, e := range stale {
		delete(st.objects, entryKey(e))
		delete(st.dirty, entryKey(e))
	}
}
