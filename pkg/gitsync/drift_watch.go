package gitsync

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Drift is found by watches, not by comparing everything each interval.
//
// A full sync (fetch, build, apply of every object, prune) records here
// what it applied; metadata-only informers, one per kind applied by a local
// GitSync and selecting only objects with the gitsync.sluice.dev/name
// label, then report an object changed or deleted by someone else
// (changedByOthers) and enqueue its GitSync. The next sync still fetches
// and builds, and when nothing changed (same generation, revision and
// digest) it re-applies only the objects reported: an interval where
// nothing drifted writes nothing. A full comparison still runs every
// spec.driftCheckInterval, after a restart (this state is in memory only:
// progress lives in status), after a failure or a sync request, and at
// every interval for the kinds that cannot be watched and for GitSyncs of
// another cluster (spec.kubeConfig), whose objects are not watched.

func newDriftWatcherFor(mgr ctrl.Manager, r *GitSyncReconciler) (*driftWatcher, error) {
	mc, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("failed to build the metadata client of the drift watches: %w", err)
	}
	return newDriftWatcher(mc, r.Applier.Mapper), nil
}

func (r *GitSyncReconciler) clock() clock.PassiveClock {
	if r.Clock != nil {
		return r.Clock
	}
	return clock.RealClock{}
}

// correctDriftOnly is the short path of a sync, run after the build: when
// nothing changed since the last full sync (canSkipFullSync), it re-applies
// only the objects the watches reported, and waits for health as a full
// sync would; it prunes nothing (the inventory did not change). done is
// false when the full sync must run instead; the reported objects are then
// compared with everything else.
func (r *GitSyncReconciler) correctDriftOnly(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus,
	applier *Applier, st *watchedSync, dirty []objKey, revision, digest string, objs []*unstructured.Unstructured, drift *[]Drift) (done bool, err error) {
	if !r.canSkipFullSync(gs, st, revision, digest) {
		return false, nil
	}
	log := ctrl.LoggerFrom(ctx)
	want := make(map[objKey]bool, len(dirty))
	for _, k := range dirty {
		want[k] = true
	}
	var todo []*unstructured.Unstructured
	for _, o := range objs {
		if want[objKey{Group: o.GroupVersionKind().Group, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}] {
			todo = append(todo, o)
		}
	}
	if len(todo) > 0 {
		log.Info("Re-applying objects changed outside Git", "objects", len(todo))
		cs, err := applier.Apply(ctx, todo)
		if err != nil {
			return true, fail(ReasonApplyFailed, false, err)
		}
		*drift = drifted(cs, true)
		for _, e := range cs.Entries {
			if e.Action != "unchanged" {
				log.Info("applied", "object", e.Subject, "action", string(e.Action))
			}
		}
		if len(*drift) > 0 {
			now := metav1.NewTime(r.clock().Now())
			status.LastAppliedTime = &now
		}
	}
	set, err := applier.HealthSet(gs, nil)
	if err != nil {
		return true, fail(ReasonHealthCheckFailed, true, err)
	}
	if gs.Spec.Wait {
		for _, o := range objs {
			set = append(set, object.UnstructuredToObjMetadata(o))
		}
		set = set.Unique()
	}
	if err := applier.Wait(ctx, set, gs.TimeoutOrDefault()); err != nil {
		return true, fail(ReasonHealthCheckFailed, false, err)
	}
	return true, nil
}

// canSkipFullSync tells whether the watches can be trusted for gs: this
// process ran its last full sync (st), at the same generation, revision and
// digest, which succeeded; no sync was requested since; the safety net is
// not due; and every kind it applied is watched.
func (r *GitSyncReconciler) canSkipFullSync(gs *sluicev1beta1.GitSync, st *watchedSync, revision, digest string) bool {
	switch {
	case st == nil, gs.Spec.KubeConfig != nil:
		return false
	case st.generation != gs.Generation, st.revision != revision, st.digest != digest:
		return false
	case gs.Status.LastFailureReason != "", gs.Status.LastAppliedRevision != revision, gs.Status.LastAppliedDigest != digest:
		return false
	case syncRequested(gs, st):
		return false
	case !r.clock().Now().Before(st.fullAt.Add(gs.DriftCheckIntervalOrDefault())):
		return false
	}
	return r.drift.watching(st)
}

// watchApplied records a sync that applied objs (inv), and watches their
// kinds; full is false when only the objects that changed were sent. The
// objects of another cluster are not watched: a GitSync with
// spec.kubeConfig compares everything at every interval.
func (r *GitSyncReconciler) watchApplied(ctx context.Context, gs *sluicev1beta1.GitSync, revision, digest string,
	inv []sluicev1beta1.GitSyncInventoryEntry, objs []*unstructured.Unstructured, full bool) {
	key := client.ObjectKeyFromObject(gs)
	if gs.Spec.KubeConfig != nil {
		r.drift.forget(key)
		return
	}
	hashes, err := objectHashes(objs)
	if err != nil {
		// Without hashes the next revision is applied whole.
		ctrl.LoggerFrom(ctx).Error(err, "failed to hash the applied objects")
	}
	r.drift.appliedObjects(ctx, key, gs.Generation, revision, digest, inv, hashes,
		gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation], r.clock().Now(), full)
}

// syncRequested tells whether gs carries a sync request that no sync has
// handled: not in its status, and not the one the last sync of this
// process handled (the cache may not have its status yet).
func syncRequested(gs *sluicev1beta1.GitSync, st *watchedSync) bool {
	req := gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	return req != gs.Status.LastHandledSyncRequest && (st == nil || req != st.request)
}
