package gitsync

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func nn(s string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: s} }

// graph is an adjacency list of GitSyncs in the namespace "ns".
type graph map[string][]string

func (g graph) edges(k types.NamespacedName) []types.NamespacedName {
	var out []types.NamespacedName
	for _, n := range g[k.Name] {
		out = append(out, nn(n))
	}
	return out
}

func TestFindCycle(t *testing.T) {
	tests := []struct {
		name  string
		graph graph
		start string
		want  string
	}{
		{name: "no dependencies", graph: graph{}, start: "a", want: ""},
		{name: "a chain", graph: graph{"apps": {"infra"}, "infra": {"crds"}}, start: "apps", want: ""},
		{name: "itself", graph: graph{"a": {"a"}}, start: "a", want: "a -> a"},
		{name: "cycle of 2", graph: graph{"infra": {"apps"}, "apps": {"infra"}}, start: "infra", want: "infra -> apps -> infra"},
		{name: "cycle of 2 from the other end", graph: graph{"infra": {"apps"}, "apps": {"infra"}}, start: "apps", want: "apps -> infra -> apps"},
		{name: "cycle of 3", graph: graph{"a": {"b"}, "b": {"c"}, "c": {"a"}}, start: "a", want: "a -> b -> c -> a"},
		{name: "a cycle that does not pass through start", graph: graph{"a": {"b"}, "b": {"c"}, "c": {"b"}}, start: "a", want: ""},
		{name: "a diamond is no cycle", graph: graph{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, start: "a", want: ""},
		{name: "the cycle behind a dead end", graph: graph{"a": {"x", "b"}, "x": {"y"}, "b": {"a"}}, start: "a", want: "a -> b -> a"},
		{name: "a missing dependency", graph: graph{"a": {"gone"}}, start: "a", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			chain := findCycle(nn(tt.start), tt.graph.edges)
			if tt.want == "" {
				g.Expect(chain).To(BeNil())
				return
			}
			g.Expect(chainString("ns", chain)).To(Equal(tt.want))
		})
	}
}

func TestFindCycle_Bounded(t *testing.T) {
	// An endless chain (each GitSync names a new one) ends without a cycle.
	g := NewWithT(t)
	calls := 0
	chain := findCycle(nn("n0"), func(k types.NamespacedName) []types.NamespacedName {
		calls++
		return []types.NamespacedName{nn(k.Name + "x")}
	})
	g.Expect(chain).To(BeNil())
	g.Expect(calls).To(BeNumerically("<=", maxGraphWalk+1))
}

func TestChainString_OtherNamespace(t *testing.T) {
	chain := []types.NamespacedName{nn("apps"), {Namespace: "platform", Name: "infra"}, nn("apps")}
	NewWithT(t).Expect(chainString("ns", chain)).To(Equal("apps -> platform/infra -> apps"))
}

// dep builds a dependency GitSync for the readiness decision.
func dep(mutate ...func(*sluicev1beta1.GitSync)) *sluicev1beta1.GitSync {
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Name: "infra", Namespace: "ns", Generation: 2}}
	gs.Status.ObservedGeneration = 2
	gs.Status.LastAttemptedRevision = "main@sha1:aaa"
	gs.Status.LastAppliedRevision = "main@sha1:aaa"
	setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionTrue, ReasonSucceeded, "applied revision main@sha1:aaa")
	for _, m := range mutate {
		m(gs)
	}
	return gs
}

func TestDependencyReadiness(t *testing.T) {
	tests := []struct {
		name    string
		dep     *sluicev1beta1.GitSync
		want    depState
		message string
	}{
		{name: "ready at its revision", dep: dep(), want: depReady},
		{name: "never synced", dep: dep(func(gs *sluicev1beta1.GitSync) { gs.Status = sluicev1beta1.GitSyncStatus{} }), want: depNotReady, message: "generation 2"},
		{name: "spec changed since", dep: dep(func(gs *sluicev1beta1.GitSync) { gs.Generation = 3 }), want: depNotReady, message: "generation 3"},
		{name: "a new revision not applied yet", dep: dep(func(gs *sluicev1beta1.GitSync) { gs.Status.LastAttemptedRevision = "main@sha1:bbb" }), want: depNotReady, message: "apply revision main@sha1:bbb"},
		{name: "suspended", dep: dep(func(gs *sluicev1beta1.GitSync) { gs.Spec.Suspend = true }), want: depNotReady, message: "suspended"},
		{name: "waiting for its own dependency", dep: dep(func(gs *sluicev1beta1.GitSync) {
			setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonDependencyNotReady, "dependency crds is not ready")
		}), want: depNotReady, message: "DependencyNotReady: dependency crds is not ready"},
		{name: "its last sync failed", dep: dep(func(gs *sluicev1beta1.GitSync) {
			gs.Status.LastAttemptedRevision = "main@sha1:bbb"
			gs.Status.LastFailureReason = ReasonApplyFailed
			setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonApplyFailed, "apply failed: forbidden")
		}), want: depFailed, message: "its last sync failed (ApplyFailed): apply failed: forbidden"},
		{name: "stalled", dep: dep(func(gs *sluicev1beta1.GitSync) {
			gs.Status.LastFailureReason = ReasonBuildFailed
			setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonBuildFailed, "broken.yaml")
			setCondition(&gs.Status, gs, sluicev1beta1.StalledCondition, metav1.ConditionTrue, ReasonBuildFailed, "broken.yaml")
		}), want: depFailed, message: "stalled (BuildFailed): broken.yaml"},
		{name: "an old failure, the spec changed since", dep: dep(func(gs *sluicev1beta1.GitSync) {
			gs.Status.LastFailureReason = ReasonApplyFailed
			setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonApplyFailed, "x")
			gs.Generation = 3
		}), want: depNotReady, message: "generation 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			state, msg := dependencyReadiness(tt.dep)
			g.Expect(state).To(Equal(tt.want), msg)
			g.Expect(msg).To(ContainSubstring(tt.message))
		})
	}
}

func toMap(t *testing.T, gs *sluicev1beta1.GitSync) map[string]any {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEvalReadyExpr(t *testing.T) {
	self := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "ns",
		Annotations: map[string]string{"want": "main@sha1:aaa"}}}
	never := dep(func(gs *sluicev1beta1.GitSync) { gs.Status = sluicev1beta1.GitSyncStatus{} })
	tests := []struct {
		name    string
		expr    string
		dep     *sluicev1beta1.GitSync
		want    bool
		invalid bool
		errText string
	}{
		{name: "true", expr: "dep.status.lastAppliedRevision == self.metadata.annotations['want']", dep: dep(), want: true},
		{name: "false", expr: "dep.status.lastAppliedRevision == 'main@sha1:bbb'", dep: dep(), want: false},
		{name: "conditions", expr: "dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')", dep: dep(), want: true},
		{name: "generation", expr: "dep.metadata.generation == dep.status.observedGeneration", dep: dep(), want: true},
		{name: "has on a missing field", expr: "has(dep.status.lastAppliedRevision)", dep: never, want: false},
		{name: "compile error", expr: "dep.status.ready ==", dep: dep(), invalid: true, errText: "Syntax error"},
		{name: "unknown variable", expr: "other.status.ready", dep: dep(), invalid: true, errText: "undeclared reference"},
		{name: "not a bool", expr: "dep.metadata.name + 'x'", dep: dep(), invalid: true, errText: "must return a bool"},
		{name: "a dynamic non-bool", expr: "dep.metadata.name", dep: dep(), invalid: true, errText: "not a bool"},
		{name: "a field not there yet", expr: "dep.status.lastAppliedRevision == 'x'", dep: never, errText: "no such key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := evalReadyExpr(context.Background(), tt.expr, toMap(t, self), toMap(t, tt.dep))
			if tt.errText != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.errText)))
				g.Expect(err).To(WithTransform(func(e error) bool { return errors.Is(e, errInvalidExpr) }, Equal(tt.invalid)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestWorst(t *testing.T) {
	g := NewWithT(t)
	g.Expect(worst(nil)).To(BeNil())
	b := worst([]*blocked{
		{reason: ReasonDependencyNotReady, message: "dependency a is not ready"},
		{reason: ReasonDependencyNotFound, message: "dependency b not found"},
		{reason: ReasonDependencyFailed, message: "dependency c failed"},
	})
	g.Expect(b.reason).To(Equal(ReasonDependencyNotFound))
	g.Expect(b.message).To(Equal("dependency a is not ready; dependency b not found; dependency c failed"))
	g.Expect(worst([]*blocked{{reason: ReasonDependencyNotReady}, {reason: ReasonInvalidCELExpression, stalled: true}}).stalled).To(BeTrue())
}

func TestReadinessChanged(t *testing.T) {
	p := readinessChanged{}
	base := dep()
	tests := []struct {
		name   string
		mutate func(*sluicev1beta1.GitSync)
		want   bool
	}{
		{name: "nothing", mutate: func(*sluicev1beta1.GitSync) {}, want: false},
		{name: "a new sync time and inventory", mutate: func(gs *sluicev1beta1.GitSync) {
			now := metav1.Now()
			gs.Status.LastAppliedTime = &now
			gs.Status.Inventory = []sluicev1beta1.GitSyncInventoryEntry{{Version: "v1", Kind: "ConfigMap", Name: "x"}}
		}, want: false},
		{name: "Ready turns False", mutate: func(gs *sluicev1beta1.GitSync) {
			setCondition(&gs.Status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonApplyFailed, "x")
		}, want: true},
		{name: "a new revision applied", mutate: func(gs *sluicev1beta1.GitSync) { gs.Status.LastAppliedRevision = "main@sha1:bbb" }, want: true},
		{name: "a new revision fetched", mutate: func(gs *sluicev1beta1.GitSync) { gs.Status.LastAttemptedRevision = "main@sha1:bbb" }, want: true},
		{name: "a spec change", mutate: func(gs *sluicev1beta1.GitSync) { gs.Generation++ }, want: true},
		{name: "stalled", mutate: func(gs *sluicev1beta1.GitSync) {
			setCondition(&gs.Status, gs, sluicev1beta1.StalledCondition, metav1.ConditionTrue, ReasonBuildFailed, "x")
		}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mutate(n)
			NewWithT(t).Expect(p.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: n})).To(Equal(tt.want))
		})
	}
	g := NewWithT(t)
	g.Expect(p.Create(event.CreateEvent{Object: base})).To(BeTrue())
	g.Expect(p.Delete(event.DeleteEvent{Object: base})).To(BeTrue())
}

func TestDependencyRequeue(t *testing.T) {
	g := NewWithT(t)
	r := &GitSyncReconciler{}
	gs := &sluicev1beta1.GitSync{Spec: sluicev1beta1.GitSyncSpec{Interval: &metav1.Duration{Duration: time.Second}}}
	g.Expect(r.dependencyRequeue(gs, &blocked{reason: ReasonDependencyNotReady})).To(Equal(DefaultDependencyRequeueInterval))
	// A cycle does not spin at a one-second interval.
	g.Expect(r.dependencyRequeue(gs, &blocked{reason: ReasonDependencyCycle, stalled: true})).To(Equal(DefaultDependencyRequeueInterval))
	gs.Spec.Interval.Duration = time.Hour
	g.Expect(r.dependencyRequeue(gs, &blocked{reason: ReasonDependencyCycle, stalled: true})).To(Equal(time.Hour))
	r.DependencyRequeueInterval = 5 * time.Second
	g.Expect(r.dependencyRequeue(gs, &blocked{reason: ReasonDependencyNotFound})).To(Equal(5 * time.Second))
}

func TestMarkBlocked(t *testing.T) {
	g := NewWithT(t)
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
	status := &sluicev1beta1.GitSyncStatus{ObservedGeneration: 3, LastFailureReason: ReasonApplyFailed, LastAppliedRevision: "main@sha1:aaa"}

	markBlocked(gs, status, &blocked{reason: ReasonDependencyNotReady, message: "dependency infra is not ready"})
	ready := apimeta.FindStatusCondition(status.Conditions, sluicev1beta1.ReadyCondition)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(ReasonDependencyNotReady))
	g.Expect(status.LastFailureReason).To(Equal(ReasonApplyFailed), "a wait is not a failure")
	g.Expect(status.ObservedGeneration).To(BeEquivalentTo(3))
	g.Expect(apimeta.IsStatusConditionTrue(status.Conditions, sluicev1beta1.ReconcilingCondition)).To(BeTrue())
	g.Expect(status.LastAppliedRevision).To(Equal("main@sha1:aaa"))

	markBlocked(gs, status, &blocked{reason: ReasonDependencyCycle, message: "dependency cycle: a -> b -> a", stalled: true})
	g.Expect(status.LastFailureReason).To(Equal(ReasonDependencyCycle))
	g.Expect(status.LastFailureMessage).To(Equal("dependency cycle: a -> b -> a"))
	g.Expect(status.ObservedGeneration).To(BeEquivalentTo(4))
	g.Expect(apimeta.IsStatusConditionTrue(status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
	g.Expect(apimeta.IsStatusConditionTrue(status.Conditions, sluicev1beta1.ReconcilingCondition)).To(BeFalse())

	markBlocked(gs, status, &blocked{reason: ReasonDependencyNotFound, message: "dependency infra not found"})
	g.Expect(apimeta.FindStatusCondition(status.Conditions, sluicev1beta1.StalledCondition)).To(BeNil())
	g.Expect(status.LastFailureReason).To(Equal(ReasonDependencyNotFound))
}

func TestIndexDependsOn(t *testing.T) {
	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "ns"}}
	gs.Spec.DependsOn = []sluicev1beta1.GitSyncDependency{{Name: "infra"}, {Name: "crds", Namespace: "platform"}}
	NewWithT(t).Expect(indexDependsOn(gs)).To(Equal([]string{"ns/infra", "platform/crds"}))
}
