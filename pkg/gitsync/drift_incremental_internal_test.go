package gitsync

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func configMapObject(name, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"namespace": "ns", "name": name},
		"data":     map[string]any{"value": value},
	}}
}

// TestCanApplyChangedOnly: a new revision is sent in part only when what
// the last sync applied is known here and nothing but Git and the watched
// cluster can have changed since.
func TestCanApplyChangedOnly(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	base := func() *sluicev1beta1.GitSync {
		return &sluicev1beta1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Generation: 2},
			Status:     sluicev1beta1.GitSyncStatus{LastAppliedRevision: "rev", LastAppliedDigest: "dig"},
		}
	}
	state := func() *watchedSync {
		return &watchedSync{generation: 2, revision: "rev", digest: "dig", fullAt: now.Add(-30 * time.Minute),
			hashes: map[objKey]string{}}
	}
	cases := []struct {
		name     string
		gs       func(*sluicev1beta1.GitSync)
		st       func(*watchedSync) *watchedSync
		revision string
		want     bool
	}{
		{name: "a new revision", revision: "rev2", want: true},
		{name: "the same revision, new substituted values", revision: "rev", want: true},
		{name: "a new revision found by a sync request (the receiver)", revision: "rev2", want: true, gs: func(gs *sluicev1beta1.GitSync) {
			gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: "1"}
		}},
		{name: "a sync request at the same revision", revision: "rev", gs: func(gs *sluicev1beta1.GitSync) {
			gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: "1"}
		}},
		{name: "a sync request this process handled, status not yet in the cache", revision: "rev", want: true,
			gs: func(gs *sluicev1beta1.GitSync) {
				gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: "1"}
			},
			st: func(s *watchedSync) *watchedSync { s.request = "1"; return s }},
		{name: "unknown in this process (a restart)", revision: "rev2", st: func(*watchedSync) *watchedSync { return nil }},
		{name: "no hashes recorded", revision: "rev2", st: func(s *watchedSync) *watchedSync { s.hashes = nil; return s }},
		{name: "another cluster", revision: "rev2", gs: func(gs *sluicev1beta1.GitSync) {
			gs.Spec.KubeConfig = &sluicev1beta1.GitSyncKubeConfig{SecretRef: sluicev1beta1.GitSyncKubeConfigSecretRef{Name: "kc"}}
		}},
		{name: "a new generation", revision: "rev2", gs: func(gs *sluicev1beta1.GitSync) { gs.Generation = 3 }},
		{name: "the last sync failed", revision: "rev2", gs: func(gs *sluicev1beta1.GitSync) { gs.Status.LastFailureReason = ReasonApplyFailed }},
		{name: "status is not at the recorded revision", revision: "rev2", gs: func(gs *sluicev1beta1.GitSync) { gs.Status.LastAppliedRevision = "old" }},
		{name: "the safety net is due", revision: "rev2", st: func(s *watchedSync) *watchedSync { s.fullAt = now.Add(-time.Hour); return s }},
		{name: "a kind cannot be watched", revision: "rev2", st: func(s *watchedSync) *watchedSync { s.unmapped = true; return s }},
		{name: "a kind not watched yet", revision: "rev2", st: func(s *watchedSync) *watchedSync {
			s.kinds = map[schema.GroupVersionResource]schema.GroupKind{{Version: "v1", Resource: "configmaps"}: {Kind: "ConfigMap"}}
			return s
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &GitSyncReconciler{Clock: clocktesting.NewFakePassiveClock(now), drift: newDriftWatcher(nil, testMapper())}
			gs, st := base(), state()
			if tc.gs != nil {
				tc.gs(gs)
			}
			if tc.st != nil {
				st = tc.st(st)
			}
			NewWithT(t).Expect(r.canApplyChangedOnly(gs, st, tc.revision)).To(Equal(tc.want))
		})
	}
}

// TestChangedObjects: the objects new, changed in Git or reported by a
// watch, and no other.
func TestChangedObjects(t *testing.T) {
	g := NewWithT(t)
	applied := []*unstructured.Unstructured{configMapObject("same", "1"), configMapObject("edited", "1"), configMapObject("drifted", "1")}
	hashes, err := objectHashes(applied)
	g.Expect(err).NotTo(HaveOccurred())
	st := &watchedSync{hashes: hashes}
	next := []*unstructured.Unstructured{configMapObject("same", "1"), configMapObject("edited", "2"),
		configMapObject("drifted", "1"), configMapObject("new", "1")}
	changed, err := changedObjects(next, st, []objKey{{Kind: "ConfigMap", Namespace: "ns", Name: "drifted"}})
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, o := range changed {
		names = append(names, o.GetName())
	}
	g.Expect(names).To(Equal([]string{"edited", "drifted", "new"}))

	// Nothing changed: nothing is sent.
	changed, err = changedObjects(applied, st, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(changed).To(BeEmpty())
}

// TestHealthSetOf: spec.wait after a partial send still waits for every object.
func TestHealthSetOf(t *testing.T) {
	g := NewWithT(t)
	objs := []*unstructured.Unstructured{configMapObject("a", "1"), configMapObject("b", "1")}
	gs := &sluicev1beta1.GitSync{}
	g.Expect(healthSetOf(gs, nil, objs, false)).To(BeEmpty(), "without spec.wait")
	gs.Spec.Wait = true
	g.Expect(healthSetOf(gs, nil, objs, true)).To(BeEmpty(), "a full sync's change set lists them already")
	g.Expect(healthSetOf(gs, nil, objs, false)).To(HaveLen(2))
}

// TestDriftWatcher_PruningIsNotDrift: the objects a sync prunes are no
// longer the GitSync's to watch, so their deletion flags nothing.
func TestDriftWatcher_PruningIsNotDrift(t *testing.T) {
	g := NewWithT(t)
	w := newDriftWatcher(nil, testMapper())
	key := types.NamespacedName{Namespace: "ns", Name: "app"}
	w.applied(t.Context(), key, 1, "r", "d", []sluicev1beta1.GitSyncInventoryEntry{
		{Version: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "kept"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "pruned"},
	}, time.Now())
	w.pruning(key, []sluicev1beta1.GitSyncInventoryEntry{{Version: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "pruned"}})
	labels := map[string]string{sluicev1beta1.GitSyncNameLabel: "app", sluicev1beta1.GitSyncNamespaceLabel: "ns"}
	for _, name := range []string{"pruned", "kept"} {
		w.flag(schema.GroupKind{Kind: "ConfigMap"}, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels}})
	}
	_, dirty := w.take(key)
	g.Expect(dirty).To(ConsistOf(objKey{Kind: "ConfigMap", Namespace: "ns", Name: "kept"}))
}
