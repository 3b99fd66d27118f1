package canary

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// CacheTransform is the manager cache's DefaultTransform. It drops from
// every cached object the managedFields entries of field managers other
// than Sluice's own (sluice-engine, sluice-router, ..., and the legacy
// "sluice"), which nothing in the manager reads, and the field sets of
// Sluice's own entries except the one the engine reads (fieldSetRead).
// managedFields are about a fifth of a cached Deployment or Service, more
// on objects that many controllers write, and on a primary most of that is
// the engine's own field set (docs/scale.md "Memory").
//
// A cached object therefore does not carry every entry the API server
// holds. Code that sends a cached object back whole must not send its
// managedFields: an update with a non-empty list replaces the server's
// (router.Restore and router.Release clear them; upgradeManagedFields
// re-reads the object from the API server before it rewrites the list).
func CacheTransform(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		// A tombstone (cache.DeletedFinalStateUnknown) or anything else
		// without metadata is stored as it comes.
		return obj, nil //nolint:nilerr // not an object with metadata: nothing to strip
	}
	entries := m.GetManagedFields()
	if len(entries) == 0 {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	changed := false
	for _, e := range entries {
		if !IsSluiceFieldManager(e.Manager) {
			changed = true
			continue
		}
		if e.FieldsV1 != nil && !fieldSetRead(obj, e) {
			e.FieldsV1 = nil
			changed = true
		}
		kept = append(kept, e)
	}
	if changed {
		m.SetManagedFields(kept)
	}
	return obj, nil
}

// fieldSetRead tells the entries whose field set the manager reads from
// its cache: the router's on a Service, where ownsField asks whether the
// router has taken over spec.selector. Every other entry keeps its
// manager, operation and time, but not its field set, which on a primary
// or a routing object lists every field the engine or the router wrote
// (upgradeManagedFields, which needs the engine's sets, reads the object
// from the API server).
func fieldSetRead(obj any, e metav1.ManagedFieldsEntry) bool {
	_, isService := obj.(*corev1.Service)
	return isService && e.Manager == sluicev1beta1.FieldManagerRouter
}

// IsSluiceFieldManager tells the field managers of Sluice's writers: the
// sluice-* managers of api/v1beta1 and GitSync, and "sluice", which every
// writer shared before each had its own.
func IsSluiceFieldManager(manager string) bool {
	return manager == legacyFieldManager || strings.HasPrefix(manager, "sluice-")
}
