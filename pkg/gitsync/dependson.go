package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Reasons of a GitSync that waits for its spec.dependsOn (Flux's names).
const (
	// ReasonDependencyNotReady: a dependency is not Ready at its last
	// fetched revision yet (or its readyExpr is false).
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonDependencyNotFound: a dependency does not exist.
	ReasonDependencyNotFound = "DependencyNotFound"
	// ReasonDependencyCycle: the dependencies lead back to the GitSync.
	ReasonDependencyCycle = "DependencyCycle"
	// ReasonDependencyFailed: a dependency is Stalled or its last sync failed.
	ReasonDependencyFailed = "DependencyFailed"
	// ReasonInvalidCELExpression: a readyExpr does not compile.
	ReasonInvalidCELExpression = "InvalidCELExpression"
)

// DefaultDependencyRequeueInterval is how often a GitSync that waits for a
// dependency looks again (Flux's --requeue-dependency). It is only a safety
// net: a dependency that changes requeues its dependents through the watch.
const DefaultDependencyRequeueInterval = 30 * time.Second

// dependsOnIndex indexes GitSyncs by the "namespace/name" of each GitSync
// they depend on, so that a change of one finds its dependents.
const dependsOnIndex = ".spec.dependsOn"

// blocked is why a GitSync may not sync now.
type blocked struct {
	reason  string
	message string
	// stalled is true when only a change of a spec can unblock it (a cycle,
	// an invalid readyExpr).
	stalled bool
}

// reasonRank orders the reasons: the first blocked dependency of the worst
// kind gives the condition reason.
var reasonRank = map[string]int{
	ReasonDependencyCycle:      0,
	ReasonInvalidCELExpression: 1,
	ReasonDependencyNotFound:   2,
	ReasonDependencyFailed:     3,
	ReasonDependencyNotReady:   4,
}

// indexDependsOn is the field index function of dependsOnIndex.
func indexDependsOn(o client.Object) []string {
	gs, ok := o.(*sluicev1beta1.GitSync)
	if !ok {
		return nil
	}
	keys := dependencyKeys(gs)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.String()
	}
	return out
}

// watchDependencies registers the index and makes a GitSync whose readiness
// changes (or which appears, or goes) requeue the GitSyncs that depend on it.
func (r *GitSyncReconciler) watchDependencies(ctx context.Context, mgr ctrl.Manager, b *builder.TypedBuilder[reconcile.Request]) (*builder.TypedBuilder[reconcile.Request], error) {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &sluicev1beta1.GitSync{}, dependsOnIndex, indexDependsOn); err != nil {
		return nil, fmt.Errorf("failed to index GitSyncs by spec.dependsOn: %w", err)
	}
	return b.Watches(&sluicev1beta1.GitSync{},
		handler.EnqueueRequestsFromMapFunc(r.requestsForDependents),
		builder.WithPredicates(readinessChanged{})), nil
}

// requestsForDependents lists the GitSyncs that depend on o.
func (r *GitSyncReconciler) requestsForDependents(ctx context.Context, o client.Object) []reconcile.Request {
	list := &sluicev1beta1.GitSyncList{}
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}.String()
	if err := r.Client.List(ctx, list, client.MatchingFields{dependsOnIndex: key}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to list the dependents of a GitSync", "GitSync", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, d := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
	}
	return reqs
}

// readinessChanged passes the changes of a GitSync its dependents care
// about: its readiness, its revisions, its generation (a spec change may
// break or mend a cycle), its creation and deletion. The rest of its
// status (times, inventory, messages) changes at every sync and would
// wake every dependent for nothing.
type readinessChanged struct {
	predicate.Funcs
}

func (readinessChanged) Create(event.CreateEvent) bool   { return true }
func (readinessChanged) Delete(event.DeleteEvent) bool   { return true }
func (readinessChanged) Generic(event.GenericEvent) bool { return false }

func (readinessChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*sluicev1beta1.GitSync)
	n, ok2 := e.ObjectNew.(*sluicev1beta1.GitSync)
	if !ok1 || !ok2 {
		return false
	}
	return readinessFingerprint(o) != readinessFingerprint(n)
}

func readinessFingerprint(gs *sluicev1beta1.GitSync) string {
	cond := func(t string) string {
		c := apimeta.FindStatusCondition(gs.Status.Conditions, t)
		if c == nil {
			return ""
		}
		return string(c.Status) + "/" + c.Reason
	}
	return fmt.Sprintf("%d|%d|%s|%s|%s|%s|%s|%t", gs.Generation, gs.Status.ObservedGeneration,
		cond(sluicev1beta1.ReadyCondition), cond(sluicev1beta1.StalledCondition),
		gs.Status.LastAppliedRevision, gs.Status.LastAttemptedRevision, gs.Status.LastFailureReason, gs.Spec.Suspend)
}

// dependencies tells whether gs must wait for its spec.dependsOn. When it
// must, it fills status (nothing is fetched, applied or pruned, so the
// applied objects and the inventory stay) and returns when to look again.
// An error is a failure to read the cache, retried with backoff.
func (r *GitSyncReconciler) dependencies(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus) (ctrl.Result, bool, error) {
	if len(gs.Spec.DependsOn) == 0 {
		return ctrl.Result{}, false, nil
	}
	b, err := r.checkDependencies(ctx, gs)
	if err != nil || b == nil {
		return ctrl.Result{}, false, err
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Waiting for dependencies", "reason", b.reason, "message", b.message)
	markBlocked(gs, status, b)
	status.LastHandledSyncRequest = gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	return ctrl.Result{RequeueAfter: jitter(r.dependencyRequeue(gs, b))}, true, nil
}

// dependencyRequeue is when a blocked GitSync looks again without being
// woken by the watch. A stalled one (a cycle, a bad expression) waits for a
// spec change, which the watch sees, so it looks again only as rarely as
// both its interval and the dependency cadence allow: never a hot loop.
func (r *GitSyncReconciler) dependencyRequeue(gs *sluicev1beta1.GitSync, b *blocked) time.Duration {
	d := r.DependencyRequeueInterval
	if d <= 0 {
		d = DefaultDependencyRequeueInterval
	}
	if b.stalled {
		return max(d, gs.IntervalOrDefault())
	}
	return d
}

// checkDependencies decides whether gs waits, and why; nil when every
// dependency is ready. It reads GitSyncs from the cache.
func (r *GitSyncReconciler) checkDependencies(ctx context.Context, gs *sluicev1beta1.GitSync) (*blocked, error) {
	self := client.ObjectKeyFromObject(gs)
	if chain := r.cycle(ctx, gs); chain != nil {
		return &blocked{reason: ReasonDependencyCycle, stalled: true,
			message: "dependency cycle: " + chainString(gs.Namespace, chain)}, nil
	}
	var selfMap map[string]any
	var found []*blocked
	for _, d := range gs.Spec.DependsOn {
		key := dependencyKey(gs, d)
		name := displayName(gs.Namespace, key)
		if key == self { // also caught by the cycle walk; kept for clarity
			return &blocked{reason: ReasonDependencyCycle, stalled: true, message: "dependency cycle: " + name + " -> " + name}, nil
		}
		dep := &sluicev1beta1.GitSync{}
		if err := r.Client.Get(ctx, key, dep); err != nil {
			if apierrors.IsNotFound(err) {
				found = append(found, &blocked{reason: ReasonDependencyNotFound, message: "dependency " + name + " not found"})
				continue
			}
			return nil, fmt.Errorf("failed to read dependency %s: %w", name, err)
		}
		if d.ReadyExpr == "" {
			switch state, why := dependencyReadiness(dep); state {
			case depFailed:
				found = append(found, &blocked{reason: ReasonDependencyFailed, message: "dependency " + name + " failed: " + why})
			case depNotReady:
				found = append(found, &blocked{reason: ReasonDependencyNotReady, message: "dependency " + name + " is not ready: " + why})
			}
			continue
		}
		if selfMap == nil {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gs)
			if err != nil {
				return nil, fmt.Errorf("failed to convert GitSync %s for readyExpr: %w", self, err)
			}
			selfMap = m
		}
		depMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
		if err != nil {
			return nil, fmt.Errorf("failed to convert dependency %s for readyExpr: %w", name, err)
		}
		ok, err := evalReadyExpr(ctx, d.ReadyExpr, selfMap, depMap)
		switch {
		case errors.Is(err, errInvalidExpr):
			found = append(found, &blocked{reason: ReasonInvalidCELExpression, stalled: true,
				message: fmt.Sprintf("the readyExpr of dependency %s is invalid: %v", name, err)})
		case err != nil:
			found = append(found, &blocked{reason: ReasonDependencyNotReady,
				message: fmt.Sprintf("dependency %s is not ready: %v", name, err)})
		case !ok:
			found = append(found, &blocked{reason: ReasonDependencyNotReady,
				message: "dependency " + name + " is not ready: its readyExpr is false"})
		}
	}
	return worst(found), nil
}

// worst merges the blocked dependencies: the reason of the worst, every message.
func worst(found []*blocked) *blocked {
	if len(found) == 0 {
		return nil
	}
	w := found[0]
	msgs := make([]string, 0, len(found))
	for _, b := range found {
		if reasonRank[b.reason] < reasonRank[w.reason] {
			w = b
		}
		msgs = append(msgs, b.message)
	}
	return &blocked{reason: w.reason, stalled: w.stalled, message: strings.Join(msgs, "; ")}
}

// cycle walks the dependency graph through the cache from gs.
func (r *GitSyncReconciler) cycle(ctx context.Context, gs *sluicev1beta1.GitSync) []types.NamespacedName {
	self := client.ObjectKeyFromObject(gs)
	return findCycle(self, func(k types.NamespacedName) []types.NamespacedName {
		if k == self {
			return dependencyKeys(gs)
		}
		dep := &sluicev1beta1.GitSync{}
		if err := r.Client.Get(ctx, k, dep); err != nil {
			// Missing or unreadable: no edges; the direct check reports it.
			return nil
		}
		return dependencyKeys(dep)
	})
}

// markBlocked writes a wait into status. Waiting for a dependency that is
// on its way is not a failure: lastFailure* keep the last failed sync. The
// other reasons need someone to act, so they are recorded as failures.
// observedGeneration advances only when stalled (as for a failed build).
func markBlocked(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, b *blocked) {
	msg := truncate(b.message)
	setCondition(status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, b.reason, msg)
	if b.reason != ReasonDependencyNotReady {
		status.LastFailureReason, status.LastFailureMessage = b.reason, msg
	}
	if b.stalled {
		status.ObservedGeneration = gs.Generation
		setCondition(status, gs, sluicev1beta1.StalledCondition, metav1.ConditionTrue, b.reason, msg)
		setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionFalse, b.reason, "waiting for a change of spec.dependsOn")
		return
	}
	apimeta.RemoveStatusCondition(&status.Conditions, sluicev1beta1.StalledCondition)
	setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionTrue, b.reason, "waiting for dependencies")
}
