package gitsync

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Inventory lists objs as inventory entries, sorted.
func Inventory(objs []*unstructured.Unstructured) []sluicev1beta1.GitSyncInventoryEntry {
	out := make([]sluicev1beta1.GitSyncInventoryEntry, 0, len(objs))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		out = append(out, sluicev1beta1.GitSyncInventoryEntry{
			Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName(),
		})
	}
	slices.SortFunc(out, compareEntries)
	return slices.CompactFunc(out, func(a, b sluicev1beta1.GitSyncInventoryEntry) bool { return compareEntries(a, b) == 0 })
}

// Diff returns the entries of old that are not in current. Entries are
// matched by group, kind, namespace and name: a version change is not a removal.
func Diff(old, current []sluicev1beta1.GitSyncInventoryEntry) []sluicev1beta1.GitSyncInventoryEntry {
	keep := map[sluicev1beta1.GitSyncInventoryEntry]bool{}
	for _, e := range current {
		e.Version = ""
		keep[e] = true
	}
	var stale []sluicev1beta1.GitSyncInventoryEntry
	for _, e := range old {
		k := e
		k.Version = ""
		if !keep[k] {
			stale = append(stale, e)
		}
	}
	return stale
}

func compareEntries(a, b sluicev1beta1.GitSyncInventoryEntry) int {
	return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
}
