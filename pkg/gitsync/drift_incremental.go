package gitsync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A new revision usually changes a few objects of many. When the watches
// can be trusted for a GitSync (what its last sync applied is known in this
// process, nothing failed since and every kind is watched), an object whose
// built form is the one last applied and that no watch saw changed is in
// the cluster as Git wants it: sending it again would cost a dry run and
// change nothing. applyChangedOnly then sends only the objects that are
// new, changed in Git, or reported by a watch; pruning, the inventory and
// health work on every object as in a full sync. Anything unknown (a
// restart, a failure, a spec change, the safety net due, an unwatched
// kind) falls back to sending everything.

// objectHashes hashes each object as it is sent to the API server.
func objectHashes(objs []*unstructured.Unstructured) (map[objKey]string, error) {
	out := make(map[objKey]string, len(objs))
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("failed to hash %s/%s %s: %w", o.GetNamespace(), o.GetName(), o.GetKind(), err)
		}
		sum := sha256.Sum256(b)
		out[keyOf(o)] = hex.EncodeToString(sum[:16])
	}
	return out, nil
}

func keyOf(o *unstructured.Unstructured) objKey {
	return objKey{Group: o.GroupVersionKind().Group, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// canApplyChangedOnly tells whether the sync of revision may send only what
// changed since st: the same spec (generation), a last sync that succeeded
// at st's revision and digest, the safety net not due, every kind watched.
// A sync request at the same revision asks for a full comparison; one that
// finds a new revision (the push receiver's) does not.
func (r *GitSyncReconciler) canApplyChangedOnly(gs *sluicev1beta1.GitSync, st *watchedSync, revision string) bool {
	switch {
	case st == nil, st.hashes == nil, gs.Spec.KubeConfig != nil:
		return false
	case st.generation != gs.Generation:
		return false
	case gs.Status.LastFailureReason != "", gs.Status.LastAppliedRevision != st.revision, gs.Status.LastAppliedDigest != st.digest:
		return false
	case st.revision == revision && syncRequested(gs, st):
		return false
	case !r.clock().Now().Before(st.fullAt.Add(gs.DriftCheckIntervalOrDefault())):
		return false
	}
	return r.drift.watching(st)
}

// changedObjects are the objects of objs that are not as st applied them,
// or that a watch reported (dirty).
func changedObjects(objs []*unstructured.Unstructured, st *watchedSync, dirty []objKey) ([]*unstructured.Unstructured, error) {
	hashes, err := objectHashes(objs)
	if err != nil {
		return nil, err
	}
	reported := make(map[objKey]bool, len(dirty))
	for _, k := range dirty {
		reported[k] = true
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		k := keyOf(o)
		if h, ok := st.hashes[k]; !ok || h != hashes[k] || reported[k] {
			out = append(out, o)
		}
	}
	return out, nil
}

// objectsToApply picks what the sync sends: the changed objects when the
// watches can be trusted (full is then false), else all of them.
func (r *GitSyncReconciler) objectsToApply(gs *sluicev1beta1.GitSync, st *watchedSync, dirty []objKey, revision string,
	objs []*unstructured.Unstructured) (send []*unstructured.Unstructured, full bool) {
	if !r.canApplyChangedOnly(gs, st, revision) {
		return objs, true
	}
	changed, err := changedObjects(objs, st, dirty)
	if err != nil {
		return objs, true
	}
	return changed, false
}

// healthSetOf adds, for spec.wait after a sync that sent only what
// changed, every object of objs: a full sync's change set lists them all.
func healthSetOf(gs *sluicev1beta1.GitSync, set object.ObjMetadataSet, objs []*unstructured.Unstructured, full bool) object.ObjMetadataSet {
	if full || !gs.Spec.Wait {
		return set
	}
	for _, o := range objs {
		set = append(set, object.UnstructuredToObjMetadata(o))
	}
	return set.Unique()
}
