package canary

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CacheTransform is the manager cache's DefaultTransform. It drops from
// every cached object the managedFields entries of field managers other
// than Sluice's own (sluice-engine, sluice-router, ..., and the legacy
// "sluice"), which nothing in the manager reads: the engine looks only at
// its own entries (ownsField, upgradeManagedFields). managedFields are about
// a fifth of a cached Deployment or Service, and more on objects that many
// controllers write (docs/scale.md "Memory").
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
	for _, e := range entries {
		if IsSluiceFieldManager(e.Manager) {
			kept = append(kept, e)
		}
	}
	if len(kept) != len(entries) {
		m.SetManagedFields(kept)
	}
	return obj, nil
}

// IsSluiceFieldManager tells the field managers of Sluice's writers: the
// sluice-* managers of api/v1beta1 and GitSync, and "sluice", which every
// writer shared before each had its own.
func IsSluiceFieldManager(manager string) bool {
	return manager == legacyFieldManager || strings.HasPrefix(manager, "sluice-")
}
