package gitsync

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

var t0 = metav1.NewTime(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

func entry(manager string, op metav1.ManagedFieldsOperationType, sub string, when *metav1.Time, fields string) metav1.ManagedFieldsEntry {
	e := metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, Time: when, APIVersion: "v1", FieldsType: "FieldsV1"}
	if fields != "" {
		e.FieldsV1 = metav1.NewFieldsV1(fields)
	}
	return e
}

func pom(rv string, entries ...metav1.ManagedFieldsEntry) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", ResourceVersion: rv, ManagedFields: entries}}
}

const (
	applied      = `{"f:data":{"f:value":{}},"f:spec":{"f:replicas":{},"f:selector":{}},"f:metadata":{"f:labels":{"f:gitsync.sluice.dev/name":{}}}}`
	noValue      = `{"f:data":{},"f:spec":{"f:replicas":{},"f:selector":{}},"f:metadata":{"f:labels":{"f:gitsync.sluice.dev/name":{}}}}`
	noReplicas   = `{"f:data":{"f:value":{}},"f:spec":{"f:selector":{}},"f:metadata":{"f:labels":{"f:gitsync.sluice.dev/name":{}}}}`
	noSelector   = `{"f:data":{"f:value":{}},"f:spec":{"f:replicas":{}},"f:metadata":{"f:labels":{"f:gitsync.sluice.dev/name":{}}}}`
	noLabel      = `{"f:data":{"f:value":{}},"f:spec":{"f:replicas":{},"f:selector":{}},"f:metadata":{}}`
	appliedMore  = `{"f:data":{"f:value":{},"f:other":{}},"f:spec":{"f:replicas":{},"f:selector":{}},"f:metadata":{"f:labels":{"f:gitsync.sluice.dev/name":{}}}}`
	applyOp      = metav1.ManagedFieldsOperationApply
	updateOp     = metav1.ManagedFieldsOperationUpdate
	engine       = sluicev1beta1.FieldManagerEngine
	router       = sluicev1beta1.FieldManagerRouter
	gitsyncOwner = FieldManager
)

// TestChangedByOthers: only a field GitSync applied, changed or removed by
// someone other than Sluice, is drift.
func TestChangedByOthers(t *testing.T) {
	mine := entry(gitsyncOwner, applyOp, "", at(0), applied)
	status := entry("kube-controller-manager", updateOp, "status", at(0), `{"f:status":{}}`)
	cases := []struct {
		name     string
		old, cur *metav1.PartialObjectMetadata
		want     bool
	}{
		{name: "a resync", old: pom("1", mine), cur: pom("1", mine), want: false},
		{name: "kubectl edit changes a value GitSync applied", old: pom("1", mine),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(0), noValue), entry("kubectl-edit", updateOp, "", at(time.Minute), `{"f:data":{"f:value":{}}}`)), want: true},
		{name: "a second edit in the same second", old: pom("1", mine, entry("kubectl-edit", updateOp, "", at(time.Minute), `{}`)),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(0), noValue), entry("kubectl-edit", updateOp, "", at(time.Minute), `{"f:data":{"f:value":{}}}`)), want: true},
		{name: "a label GitSync applied removed", old: pom("1", mine),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(0), noLabel)), want: true},
		{name: "the managed fields reset", old: pom("1", mine), cur: pom("2"), want: true},
		{name: "the engine scales the target", old: pom("1", mine),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(0), noReplicas), entry(engine, applyOp, "", at(time.Minute), `{"f:spec":{"f:replicas":{}}}`)), want: false},
		{name: "the router switches the selector", old: pom("1", mine),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(0), noSelector), entry(router, updateOp, "", at(time.Minute), `{"f:spec":{"f:selector":{}}}`)), want: false},
		{name: "a status update", old: pom("1", mine, status),
			cur: pom("2", mine, entry("kube-controller-manager", updateOp, "status", at(time.Minute), `{"f:status":{}}`)), want: false},
		{name: "an annotation added by a controller", old: pom("1", mine),
			cur: pom("2", mine, entry("kube-controller-manager", updateOp, "", at(time.Minute), `{"f:metadata":{"f:annotations":{}}}`)), want: false},
		{name: "GitSync applies a new revision without a field", old: pom("1", entry(gitsyncOwner, applyOp, "", at(0), appliedMore)),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(time.Minute), applied)), want: false},
		{name: "GitSync applies a new revision with more fields", old: pom("1", mine),
			cur: pom("2", entry(gitsyncOwner, applyOp, "", at(time.Minute), appliedMore)), want: false},
		{name: "an object GitSync never applied", old: pom("1", entry("kubectl", updateOp, "", at(0), `{"f:data":{}}`)),
			cur: pom("2", entry("other", updateOp, "", at(time.Minute), `{"f:data":{}}`)), want: false},
		{name: "a deletion under way", old: pom("1", mine),
			cur: func() *metav1.PartialObjectMetadata { p := pom("2"); p.DeletionTimestamp = at(time.Minute); return p }(), want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			// The informers see objects through slimMetadata.
			o, _ := slimMetadata(tc.old)
			c, _ := slimMetadata(tc.cur)
			g.Expect(changedByOthers(o.(*metav1.PartialObjectMetadata), c.(*metav1.PartialObjectMetadata))).To(Equal(tc.want))
		})
	}
}

// TestSlimMetadata keeps the ownership labels and GitSync's field set only.
func TestSlimMetadata(t *testing.T) {
	g := NewWithT(t)
	p := pom("7", entry(gitsyncOwner, applyOp, "", at(0), applied), entry("kubectl", updateOp, "", at(0), `{"f:data":{}}`))
	p.Labels = map[string]string{sluicev1beta1.GitSyncNameLabel: "app", sluicev1beta1.GitSyncNamespaceLabel: "ns", "team": "a"}
	p.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	out, err := slimMetadata(p)
	g.Expect(err).NotTo(HaveOccurred())
	s := out.(*metav1.PartialObjectMetadata)
	g.Expect(s.Labels).To(Equal(map[string]string{sluicev1beta1.GitSyncNameLabel: "app", sluicev1beta1.GitSyncNamespaceLabel: "ns"}))
	g.Expect(s.Annotations).To(BeNil())
	g.Expect(s.ResourceVersion).To(Equal("7"))
	g.Expect(s.ManagedFields).To(HaveLen(2))
	g.Expect(s.ManagedFields[0].FieldsV1).NotTo(BeNil())
	g.Expect(s.ManagedFields[1].FieldsV1).To(BeNil())
	g.Expect(s.ManagedFields[1].Time).To(Equal(at(0)))
	again, _ := slimMetadata(s)
	g.Expect(again).To(Equal(s), "a transform may run twice")
}

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	return m
}

func inv(kind string, names ...string) []sluicev1beta1.GitSyncInventoryEntry {
	var out []sluicev1beta1.GitSyncInventoryEntry
	for _, n := range names {
		e := sluicev1beta1.GitSyncInventoryEntry{Version: "v1", Kind: kind, Namespace: "ns", Name: n}
		if kind == "Deployment" {
			e.Group = "apps"
		}
		out = append(out, e)
	}
	return out
}

func startedWatcher(t *testing.T) (*driftWatcher, workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	t.Helper()
	w := newDriftWatcher(metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), testMapper())
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); q.ShutDown() })
	if err := w.source().Start(ctx, q); err != nil {
		t.Fatal(err)
	}
	return w, q
}

func watchedResources(w *driftWatcher) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for gvr := range w.informers {
		out = append(out, gvr.Resource)
	}
	return out
}

// TestDriftWatcher_InformersFollowTheInventories: one informer per kind
// applied by some GitSync, stopped when none applies it any more.
func TestDriftWatcher_InformersFollowTheInventories(t *testing.T) {
	g := NewWithT(t)
	w, _ := startedWatcher(t)
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	w.applied(context.Background(), a, 1, "r", "d", inv("ConfigMap", "x", "y"), time.Now())
	g.Expect(watchedResources(w)).To(ConsistOf("configmaps"))
	w.applied(context.Background(), b, 1, "r", "d", append(inv("ConfigMap", "z"), inv("Deployment", "web")...), time.Now())
	g.Expect(watchedResources(w)).To(ConsistOf("configmaps", "deployments"))
	w.applied(context.Background(), b, 2, "r", "d", inv("Deployment", "web"), time.Now())
	g.Expect(watchedResources(w)).To(ConsistOf("configmaps", "deployments"))
	w.forget(a)
	g.Expect(watchedResources(w)).To(ConsistOf("deployments"), "no GitSync applies ConfigMaps any more")
	w.applied(context.Background(), b, 3, "r", "d", nil, time.Now())
	g.Expect(watchedResources(w)).To(BeEmpty())
	g.Eventually(func() bool {
		st, _ := w.take(b)
		return w.watching(st)
	}).Should(BeTrue(), "an empty inventory needs no informer")
}

// TestDriftWatcher_Flag: an object of the inventory is marked and its
// GitSync enqueued; an object no longer in the inventory is not.
func TestDriftWatcher_Flag(t *testing.T) {
	g := NewWithT(t)
	w, q := startedWatcher(t)
	key := types.NamespacedName{Namespace: "apps", Name: "app"}
	w.applied(context.Background(), key, 1, "r", "d", inv("ConfigMap", "kept", "removed"), time.Now())
	w.applied(context.Background(), key, 2, "r", "d", inv("ConfigMap", "kept"), time.Now())
	cm := schema.GroupKind{Kind: "ConfigMap"}
	labelled := func(name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Labels: map[string]string{sluicev1beta1.GitSyncNameLabel: "app", sluicev1beta1.GitSyncNamespaceLabel: "apps"}}}
	}
	w.flag(cm, labelled("removed"))
	g.Expect(q.Len()).To(BeZero(), "an object removed from Git is not watched")
	w.flag(cm, labelled("kept"))
	g.Expect(q.Len()).To(Equal(1))
	req, _ := q.Get()
	g.Expect(req.NamespacedName).To(Equal(key))
	q.Done(req)
	// The labels were removed by hand: found by its inventory all the same.
	w.flag(schema.GroupKind{Kind: "ConfigMap"}, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kept"}})
	_, dirty := w.take(key)
	g.Expect(dirty).To(ConsistOf(objKey{Kind: "ConfigMap", Namespace: "ns", Name: "kept"}))
	_, dirty = w.take(key)
	g.Expect(dirty).To(BeEmpty(), "taken once")
	// A full sync keeps what was reported while it ran.
	w.flag(cm, labelled("kept"))
	w.applied(context.Background(), key, 3, "r", "d", inv("ConfigMap", "kept"), time.Now())
	_, dirty = w.take(key)
	g.Expect(dirty).To(HaveLen(1))
}

// TestCanSkipFullSync: the watches are trusted only when nothing but the
// cluster can have changed since a full sync of this process.
func TestCanSkipFullSync(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	base := func() *sluicev1beta1.GitSync {
		return &sluicev1beta1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Generation: 2},
			Status:     sluicev1beta1.GitSyncStatus{LastAppliedRevision: "rev", LastAppliedDigest: "dig"},
		}
	}
	state := func() *watchedSync {
		return &watchedSync{generation: 2, revision: "rev", digest: "dig", fullAt: now.Add(-30 * time.Minute)}
	}
	cases := []struct {
		name   string
		gs     func(*sluicev1beta1.GitSync)
		st     func(*watchedSync) *watchedSync
		digest string
		want   bool
	}{
		{name: "nothing changed", want: true},
		{name: "unknown in this process (a restart)", st: func(*watchedSync) *watchedSync { return nil }},
		{name: "another cluster", gs: func(gs *sluicev1beta1.GitSync) {
			gs.Spec.KubeConfig = &sluicev1beta1.GitSyncKubeConfig{SecretRef: sluicev1beta1.GitSyncKubeConfigSecretRef{Name: "kc"}}
		}},
		{name: "a new generation", gs: func(gs *sluicev1beta1.GitSync) { gs.Generation = 3 }},
		{name: "a new digest", digest: "other"},
		{name: "the last sync failed", gs: func(gs *sluicev1beta1.GitSync) { gs.Status.LastFailureReason = ReasonHealthCheckFailed }},
		{name: "a sync request", gs: func(gs *sluicev1beta1.GitSync) {
			gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: "1"}
		}},
		{name: "a sync request this process handled, status not yet in the cache", want: true,
			gs: func(gs *sluicev1beta1.GitSync) {
				gs.Annotations = map[string]string{sluicev1beta1.GitSyncSyncRequestedAnnotation: "1"}
			},
			st: func(s *watchedSync) *watchedSync { s.request = "1"; return s }},
		{name: "the safety net is due", st: func(s *watchedSync) *watchedSync { s.fullAt = now.Add(-time.Hour); return s }},
		{name: "a shorter safety net is due", gs: func(gs *sluicev1beta1.GitSync) {
			gs.Spec.DriftCheckInterval = &metav1.Duration{Duration: 10 * time.Minute}
		}},
		{name: "a kind cannot be watched", st: func(s *watchedSync) *watchedSync { s.unmapped = true; return s }},
		{name: "a kind not watched yet", st: func(s *watchedSync) *watchedSync {
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
			digest := "dig"
			if tc.digest != "" {
				digest = tc.digest
			}
			NewWithT(t).Expect(r.canSkipFullSync(gs, st, "rev", digest)).To(Equal(tc.want))
		})
	}
}

// TestDriftWatcher_StopsWithTheController: no informer outlives the
// controller, and none starts before it or after it stopped.
func TestDriftWatcher_StopsWithTheController(t *testing.T) {
	g := NewWithT(t)
	w := newDriftWatcher(metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), testMapper())
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	w.applied(context.Background(), key, 1, "r", "d", inv("ConfigMap", "x"), time.Now())
	g.Expect(watchedResources(w)).To(BeEmpty(), "the controller has not started")
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	ctx, cancel := context.WithCancel(context.Background())
	g.Expect(w.source().Start(ctx, q)).To(Succeed())
	w.applied(context.Background(), key, 1, "r", "d", inv("ConfigMap", "x"), time.Now())
	g.Expect(watchedResources(w)).To(ConsistOf("configmaps"))
	cancel()
	g.Eventually(func() []string { return watchedResources(w) }).Should(BeEmpty())
	w.applied(context.Background(), key, 1, "r", "d", inv("ConfigMap", "x"), time.Now())
	g.Expect(watchedResources(w)).To(BeEmpty(), "the controller has stopped")
}

// TestDriftWatcher_RefusedKindIsNotTrusted: a kind the controller may not
// list stops its informer, and its GitSyncs keep comparing everything.
func TestDriftWatcher_RefusedKindIsNotTrusted(t *testing.T) {
	g := NewWithT(t)
	mc := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	mc.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("no RBAC"))
	})
	w := newDriftWatcher(mc, testMapper())
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); q.ShutDown() })
	g.Expect(w.source().Start(ctx, q)).To(Succeed())
	cms := types.NamespacedName{Namespace: "ns", Name: "cms"}
	deps := types.NamespacedName{Namespace: "ns", Name: "deps"}
	w.applied(context.Background(), cms, 1, "r", "d", inv("ConfigMap", "x"), time.Now())
	w.applied(context.Background(), deps, 1, "r", "d", inv("Deployment", "web"), time.Now())
	g.Eventually(func() bool { st, _ := w.take(cms); return w.watching(st) }).Should(BeTrue())
	g.Consistently(func() bool { st, _ := w.take(deps); return w.watching(st) }, time.Second).Should(BeFalse())
	w.mu.Lock()
	broken := w.informers[schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}].broken
	w.mu.Unlock()
	g.Expect(broken).To(BeTrue())
}
