package gitsync

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// sluiceManagers are the field managers of Sluice's own writers. A change
// they make is not drift: GitSync's own applies, and the fields the engine
// and the routers own during a release (EngineOwnedFields), which GitSync
// leaves to them.
var sluiceManagers = map[string]bool{
	sluicev1beta1.FieldManagerGitSync: true,
	sluicev1beta1.FieldManagerEngine:  true,
	sluicev1beta1.FieldManagerRouter:  true,
	SourceFieldManager:                true,
}

// isGitSyncApply tells the managedFields entry of GitSync's applies.
func isGitSyncApply(e metav1.ManagedFieldsEntry) bool {
	return e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
}

// slimMetadata is the informers' transform: it keeps only what
// changedByOthers and flag read, so a watched object costs a few hundred
// bytes whatever its annotations: name, namespace, the ownership labels,
// resourceVersion, deletionTimestamp, and the managedFields entries with
// their field sets dropped, except the set GitSync applied.
func slimMetadata(obj any) (any, error) {
	o, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	slim := &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name:              o.Name,
		Namespace:         o.Namespace,
		UID:               o.UID,
		ResourceVersion:   o.ResourceVersion,
		DeletionTimestamp: o.DeletionTimestamp,
	}}
	for _, l := range []string{sluicev1beta1.GitSyncNameLabel, sluicev1beta1.GitSyncNamespaceLabel} {
		if v, ok := o.Labels[l]; ok {
			if slim.Labels == nil {
				slim.Labels = map[string]string{}
			}
			slim.Labels[l] = v
		}
	}
	for _, e := range o.ManagedFields {
		if !isGitSyncApply(e) {
			e.FieldsV1 = nil
		}
		slim.ManagedFields = append(slim.ManagedFields, e)
	}
	return slim, nil
}

// changedByOthers tells whether an update of an applied object is drift:
// whether someone other than Sluice changed or removed a field GitSync
// applied. It reads only managedFields. Server-side apply records which
// manager owns each field, and a write that changes a field GitSync applied
// takes that field out of GitSync's set (an update always takes ownership;
// a forced apply too), or removes it. So drift shows as GitSync's set
// losing fields. The writer is the manager whose entry appeared or whose
// time moved: when that is only Sluice (GitSync applying a new revision,
// the engine scaling the target it owns the replicas of), it is not drift;
// when no entry moved (a removal, or a second edit within the same
// second, the times have second precision), it is treated as drift, which
// costs at most a dry-run of that object. Status writes, annotations added
// by other controllers and fields GitSync never applied do not count.
func changedByOthers(old, cur *metav1.PartialObjectMetadata) bool {
	if old.ResourceVersion == cur.ResourceVersion || cur.DeletionTimestamp != nil {
		// A resync, or a deletion under way: that is reported when the object is gone.
		return false
	}
	before, ok := appliedFields(old)
	if !ok {
		return false
	}
	after, _ := appliedFields(cur)
	if !lostFields(before, after) {
		return false
	}
	moved := movedManagers(old, cur)
	if len(moved) == 0 {
		return true
	}
	for _, m := range moved {
		if !sluiceManagers[m] {
			return true
		}
	}
	return false
}

// appliedFields is the field set of GitSync's apply entry, decoded; ok is
// false when there is none (or it cannot be read, then nothing is claimed).
func appliedFields(o *metav1.PartialObjectMetadata) (map[string]any, bool) {
	for _, e := range o.ManagedFields {
		if !isGitSyncApply(e) || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &set); err != nil {
			return nil, false
		}
		return set, true
	}
	return nil, false
}

// lostFields tells whether a field set (a FieldsV1 tree: "f:name",
// "k:{...}" and "v:..." keys down to empty leaves) has a path that after lacks.
func lostFields(before, after map[string]any) bool {
	for k, v := range before {
		w, ok := after[k]
		if !ok {
			return true
		}
		bm, _ := v.(map[string]any)
		am, _ := w.(map[string]any)
		if lostFields(bm, am) {
			return true
		}
	}
	return false
}

// movedManagers are the managers whose entry is new in cur or whose time
// moved: the writers of that update.
func movedManagers(old, cur *metav1.PartialObjectMetadata) []string {
	type key struct{ manager, op, sub string }
	times := map[key]string{}
	for _, e := range old.ManagedFields {
		times[key{e.Manager, string(e.Operation), e.Subresource}] = timeString(e.Time)
	}
	var out []string
	for _, e := range cur.ManagedFields {
		t, ok := times[key{e.Manager, string(e.Operation), e.Subresource}]
		if !ok || t != timeString(e.Time) {
			out = append(out, e.Manager)
		}
	}
	return out
}

func timeString(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
