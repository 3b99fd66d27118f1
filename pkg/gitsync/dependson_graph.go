package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// maxGraphWalk bounds the cycle search: a chain of GitSyncs longer than
// this is not followed further (it is not a cycle through the start, or
// it is too long to name usefully).
const maxGraphWalk = 1000

// dependencyKey is the GitSync a dependency names: its namespace defaults
// to that of the dependent.
func dependencyKey(gs *sluicev1beta1.GitSync, d sluicev1beta1.GitSyncDependency) types.NamespacedName {
	ns := d.Namespace
	if ns == "" {
		ns = gs.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: d.Name}
}

// dependencyKeys are the GitSyncs gs depends on, in spec order.
func dependencyKeys(gs *sluicev1beta1.GitSync) []types.NamespacedName {
	keys := make([]types.NamespacedName, 0, len(gs.Spec.DependsOn))
	for _, d := range gs.Spec.DependsOn {
		keys = append(keys, dependencyKey(gs, d))
	}
	return keys
}

// findCycle follows the dependencies from start (edges gives those of a
// GitSync, nil when it is unknown) and returns the first chain that leads
// back to start, start first and last, or nil. A cycle that does not pass
// through start is not its own: the GitSyncs on it report it, and start
// only waits for them. The walk is depth-first in spec order, so the chain
// named is the same at every reconcile.
func findCycle(start types.NamespacedName, edges func(types.NamespacedName) []types.NamespacedName) []types.NamespacedName {
	visited := map[types.NamespacedName]bool{start: true}
	path := []types.NamespacedName{start}
	var walk func(types.NamespacedName) bool
	walk = func(n types.NamespacedName) bool {
		for _, next := range edges(n) {
			if next == start {
				path = append(path, next)
				return true
			}
			if visited[next] || len(visited) >= maxGraphWalk {
				continue
			}
			visited[next] = true
			path = append(path, next)
			if walk(next) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if walk(start) {
		return path
	}
	return nil
}

// chainString names a chain as "infra -> apps -> infra", with the namespace
// of the GitSyncs outside ns.
func chainString(ns string, chain []types.NamespacedName) string {
	names := make([]string, len(chain))
	for i, k := range chain {
		names[i] = displayName(ns, k)
	}
	return strings.Join(names, " -> ")
}

func displayName(ns string, k types.NamespacedName) string {
	if k.Namespace == ns {
		return k.Name
	}
	return k.String()
}

// depState is what a dependency means for its dependent.
type depState int

const (
	depReady depState = iota
	// depNotReady: the dependency is still working (or waiting itself).
	depNotReady
	// depFailed: the dependency is Stalled or its last sync failed.
	depFailed
)

// dependencyReadiness is Flux's built-in check: Ready=True at the current
// generation, and the revision last fetched is the one applied (a new
// commit being applied, or failing, is not ready yet). It says why not.
func dependencyReadiness(dep *sluicev1beta1.GitSync) (depState, string) {
	if dep.Spec.Suspend {
		return depNotReady, "it is suspended"
	}
	if s := apimeta.FindStatusCondition(dep.Status.Conditions, sluicev1beta1.StalledCondition); s != nil && s.Status == metav1.ConditionTrue {
		return depFailed, fmt.Sprintf("it is stalled (%s): %s", s.Reason, s.Message)
	}
	ready := apimeta.FindStatusCondition(dep.Status.Conditions, sluicev1beta1.ReadyCondition)
	if ready != nil && ready.Status == metav1.ConditionFalse && dep.Status.LastFailureReason != "" &&
		ready.Reason == dep.Status.LastFailureReason && ready.ObservedGeneration == dep.Generation {
		return depFailed, fmt.Sprintf("its last sync failed (%s): %s", ready.Reason, ready.Message)
	}
	switch {
	case dep.Status.ObservedGeneration != dep.Generation:
		return depNotReady, fmt.Sprintf("waiting for it to sync generation %d", dep.Generation)
	case ready == nil || ready.Status != metav1.ConditionTrue:
		if ready != nil && ready.Message != "" {
			return depNotReady, fmt.Sprintf("waiting for it to be Ready (%s: %s)", ready.Reason, ready.Message)
		}
		return depNotReady, "waiting for it to be Ready"
	case dep.Status.LastAppliedRevision != dep.Status.LastAttemptedRevision:
		return depNotReady, fmt.Sprintf("waiting for it to apply revision %s", dep.Status.LastAttemptedRevision)
	}
	return depReady, ""
}

// errInvalidExpr marks a readyExpr that does not compile: only a change of
// the spec can fix it.
var errInvalidExpr = errors.New("invalid readyExpr")

// celEnv declares self and dep, the variables of Flux's readyExpr, as
// objects (maps of JSON values).
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	obj := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(cel.Variable("self", obj), cel.Variable("dep", obj))
})

// maxExprCost bounds the evaluation of a readyExpr: a comprehension over
// the conditions costs a few hundred; this stops an expression that would
// loop over large nested lists.
const maxExprCost = 1_000_000

// evalReadyExpr evaluates a readyExpr over the dependent (self) and the
// dependency (dep). A compile error, or a result that cannot be a bool,
// wraps errInvalidExpr; an evaluation error (a field not there yet, such as
// the status of a dependency never synced) is a plain error: not ready yet.
func evalReadyExpr(ctx context.Context, expr string, self, dep map[string]any) (bool, error) {
	env, err := celEnv()
	if err != nil {
		return false, fmt.Errorf("failed to create the CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return false, fmt.Errorf("%w: %w", errInvalidExpr, iss.Err())
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return false, fmt.Errorf("%w: it must return a bool, not %s", errInvalidExpr, t)
	}
	prg, err := env.Program(ast, cel.CostLimit(maxExprCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		return false, fmt.Errorf("%w: %w", errInvalidExpr, err)
	}
	out, _, err := prg.ContextEval(ctx, map[string]any{"self": self, "dep": dep})
	if err != nil {
		return false, fmt.Errorf("readyExpr failed: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: it returned %v, not a bool", errInvalidExpr, out.Type())
	}
	return b, nil
}
