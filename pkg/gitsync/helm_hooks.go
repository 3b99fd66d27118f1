package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
)

// Reasons of the Helm hooks and chart tests.
const (
	// ReasonHelmHookFailed: a hook of an install or an upgrade failed or
	// timed out. After a pre-install or pre-upgrade hook nothing of the
	// release was applied; nothing further is applied or pruned until the
	// release changes or a sync is requested.
	ReasonHelmHookFailed = "HelmHookFailed"
	// ReasonHelmTestFailed: a chart test (helm.sh/hook: test) failed.
	ReasonHelmTestFailed = "HelmTestFailed"
	// ReasonHelmHooksRunning: a hook or a test runs; the GitSync looks
	// again in a few seconds (Ready=Unknown, Reconciling=True).
	ReasonHelmHooksRunning = "HelmHooksRunning"
)

// Hooks are created and deleted with the rules that cover what GitSync
// applies (chart values gitSync.apply, or spec.serviceAccountName); reading
// the outcome of a hook Job or Pod needs get only.

// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get
// +kubebuilder:rbac:groups="",resources=pods,verbs=get

// hookRunAnnotation marks the hook objects that GitSync creates with the
// run they belong to (GitSync UID, attempt, event), so that a reconcile
// tells its own running Job from one left by an earlier release.
const hookRunAnnotation = "gitsync.sluice.dev/hook-run"

// hooksPoll is how soon a GitSync looks again at a running hook: reconciles
// stay short (create, requeue, check) and the progress lives in status.
const hooksPoll = 2 * time.Second

// hooksWaiting is what sync returns while a hook or a test runs: not a
// failure, a shorter requeue.
type hooksWaiting struct{ msg string }

func (w *hooksWaiting) Error() string { return w.msg }

func isHooksWaiting(err error) bool {
	var w *hooksWaiting
	return errors.As(err, &w)
}

// markHooksRunning records a running hook in the conditions; the failure
// fields stay as they were (no recovery is announced before the release
// is through) and observedGeneration does not advance.
func markHooksRunning(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, err error) bool {
	if !isHooksWaiting(err) {
		return false
	}
	msg := truncate(err.Error())
	setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionTrue, ReasonHelmHooksRunning, msg)
	setCondition(status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionUnknown, ReasonHelmHooksRunning, msg)
	return true
}

// nextSync is when the GitSync syncs again: soon while a hook runs, else
// after its interval.
func nextSync(gs *sluicev1beta1.GitSync, err error) time.Duration {
	if isHooksWaiting(err) {
		return min(hooksPoll, gs.IntervalOrDefault())
	}
	return jitter(gs.IntervalOrDefault())
}

// key names a release: hooks run again only when it changes.
func (rel *helmRelease) key() string {
	return rel.chart + "-" + rel.version + "@" + rel.valuesDigest
}

func hooksStatus(status *sluicev1beta1.GitSyncStatus) *sluicev1beta1.GitSyncHelmHooksStatus {
	if status.Helm == nil {
		status.Helm = &sluicev1beta1.GitSyncHelmStatus{}
	}
	if status.Helm.Hooks == nil {
		status.Helm.Hooks = &sluicev1beta1.GitSyncHelmHooksStatus{}
	}
	return status.Helm.Hooks
}

// retryRequested tells whether sluice.dev/sync-requested-at changed since
// the last sync: it retries a release whose hooks or tests failed.
func retryRequested(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus) bool {
	v, ok := gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	return ok && v != status.LastHandledSyncRequest
}

// helmPreHooks runs before the release's objects are applied: on a new
// release (first install, another chart version or other values) it starts
// an attempt and runs its pre-install or pre-upgrade hooks one by one. nil
// lets the apply go on; a hooksWaiting or a failure stops the sync there.
func (r *GitSyncReconciler) helmPreHooks(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, applier *Applier, rel *helmRelease) error {
	if rel == nil {
		return nil
	}
	hs, key := hooksStatus(status), rel.key()
	if hs.Revision == key {
		return nil
	}
	if hs.Failure != "" && retryRequested(gs, status) {
		hs.Failure, hs.AttemptedRevision = "", ""
	}
	if hs.AttemptedRevision == key && hs.Failure != "" {
		return fail(ReasonHelmHookFailed, true, errors.New(hs.Failure))
	}
	if hs.AttemptedRevision != key {
		h := status.Helm
		if hs.Revision == "" && hs.Attempt == 0 && h.ChartName == rel.chart && h.ChartVersion == rel.version && h.ValuesDigest == rel.valuesDigest {
			// Applied by a Sluice that did not run hooks: this release was
			// installed then, and is not installed again.
			hs.Revision = key
			return nil
		}
		hs.AttemptedRevision, hs.Failure, hs.Next, hs.Running = key, "", 0, ""
		hs.Attempt++
		hs.Phase = sluicev1beta1.GitSyncHelmPreUpgrade
		if h.ChartVersion == "" {
			hs.Phase = sluicev1beta1.GitSyncHelmPreInstall
		}
	}
	post := map[sluicev1beta1.GitSyncHelmHookPhase]sluicev1beta1.GitSyncHelmHookPhase{
		sluicev1beta1.GitSyncHelmPreInstall: sluicev1beta1.GitSyncHelmPostInstall,
		sluicev1beta1.GitSyncHelmPreUpgrade: sluicev1beta1.GitSyncHelmPostUpgrade,
	}[hs.Phase]
	if post == "" {
		return nil // post hooks or tests of this release: apply, then helmPostHooks
	}
	if done, err := r.runHooks(ctx, gs, applier, hs, rel, ReasonHelmHookFailed, r.hookTimeout(gs), nil); !done {
		return err
	}
	hs.Phase, hs.Next = post, 0
	return nil
}

// helmPostHooks runs once the release's objects are applied and healthy:
// its post-install or post-upgrade hooks, then its chart tests.
func (r *GitSyncReconciler) helmPostHooks(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, applier *Applier, rel *helmRelease) error {
	if rel == nil {
		return nil
	}
	hs, key := hooksStatus(status), rel.key()
	if hs.AttemptedRevision == key && (hs.Phase == sluicev1beta1.GitSyncHelmPostInstall || hs.Phase == sluicev1beta1.GitSyncHelmPostUpgrade) {
		if done, err := r.runHooks(ctx, gs, applier, hs, rel, ReasonHelmHookFailed, r.hookTimeout(gs), nil); !done {
			return checkFailed(err) // remediated as a failed upgrade (helm_hook_remediation.go)
		}
		hs.Revision, hs.Phase, hs.Next = key, "", 0
		ctrl.LoggerFrom(ctx).Info("Helm release hooks done", "chart", rel.chart, "version", rel.version)
	}
	if hs.Revision != key {
		return nil
	}
	return r.helmTests(ctx, gs, status, applier, rel)
}

// helmTests runs the chart's tests once per release when spec.helm.test
// enables them; a failed test fails every sync of that release (Ready=False
// HelmTestFailed) until the release changes or a sync is requested.
func (r *GitSyncReconciler) helmTests(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, applier *Applier, rel *helmRelease) error {
	t := gs.Spec.Helm.Test
	if t == nil || !t.Enable {
		return nil
	}
	hs, key := hooksStatus(status), rel.key()
	failed := testFailure(hs)
	if hs.TestedRevision == key && failed != "" && retryRequested(gs, status) {
		hs.TestedRevision = ""
	}
	if hs.TestedRevision == key {
		if failed != "" {
			return fail(ReasonHelmTestFailed, true, errors.New(failed))
		}
		return nil
	}
	if hs.Phase != sluicev1beta1.GitSyncHelmTestPhase {
		hs.Phase, hs.Next, hs.Tests = sluicev1beta1.GitSyncHelmTestPhase, 0, nil
		hs.Attempt++
	}
	timeout := r.hookTimeout(gs)
	if t.Timeout != nil && t.Timeout.Duration > 0 {
		timeout = t.Timeout.Duration
	}
	record := func(name string, ok bool, msg string) {
		res := sluicev1beta1.GitSyncHelmTestStatus{Name: name, Result: sluicev1beta1.GitSyncHelmHookSucceeded}
		if !ok {
			res.Result, res.Message = sluicev1beta1.GitSyncHelmHookFailed, truncateTo(msg, 1024)
		}
		if len(hs.Tests) < 32 {
			hs.Tests = append(hs.Tests, res)
		}
	}
	done, err := r.runHooks(ctx, gs, applier, hs, rel, ReasonHelmTestFailed, timeout, record)
	if !done && isHooksWaiting(err) {
		return err
	}
	var se *syncError
	if !done && (!errors.As(err, &se) || !se.stalled) {
		return err // transient: the same test is looked at again
	}
	hs.TestedRevision, hs.Phase, hs.Next = key, "", 0
	if err != nil {
		// A failed test is not a failed release (its hooks ran): the
		// failure lives in hs.Tests, and the message is the same at every
		// sync so that alerts see one failure.
		hs.Failure = ""
		if msg := testFailure(hs); msg != "" {
			return checkFailed(fail(ReasonHelmTestFailed, true, errors.New(msg)))
		}
		return err // the tests could not be prepared (an unknown kind)
	}
	ctrl.LoggerFrom(ctx).Info("Helm chart tests passed", "chart", rel.chart, "version", rel.version, "tests", len(hs.Tests))
	return nil
}

// testFailure is the message of the first failed test, or "".
func testFailure(hs *sluicev1beta1.GitSyncHelmHooksStatus) string {
	for _, t := range hs.Tests {
		if t.Result == sluicev1beta1.GitSyncHelmHookFailed {
			return fmt.Sprintf("chart test %s failed: %s", t.Name, t.Message)
		}
	}
	return ""
}

func (r *GitSyncReconciler) hookTimeout(gs *sluicev1beta1.GitSync) time.Duration {
	if h := gs.Spec.Helm.Hooks; h != nil && h.Timeout != nil && h.Timeout.Duration > 0 {
		return h.Timeout.Duration
	}
	return gs.TimeoutOrDefault()
}

// runHooks runs the hooks of hs.Phase from hs.Next on, one at a time as
// Helm does: it creates the next hook and returns hooksWaiting while a Job
// or Pod runs; another kind is done once created. done is true when all
// succeeded (then the hook-succeeded ones are deleted). A failure (or a
// timeout) deletes the failed hook if hook-failed and the earlier ones if
// hook-succeeded, records hs.Failure and returns a stalled failure.
func (r *GitSyncReconciler) runHooks(ctx context.Context, gs *sluicev1beta1.GitSync, applier *Applier, hs *sluicev1beta1.GitSyncHelmHooksStatus, rel *helmRelease, reason string, timeout time.Duration, record func(string, bool, string)) (bool, error) {
	log := ctrl.LoggerFrom(ctx)
	event := string(hs.Phase)
	hooks, err := r.preparedHooks(ctx, gs, applier, helm.ForEvent(rel.hookList, event))
	if err != nil {
		return false, fail(reason, true, err)
	}
	run := string(gs.UID) + "/" + strconv.FormatInt(hs.Attempt, 10) + "/" + event
	// failed ends the run at hook i: recorded, the hooks deleted as their
	// policies say (a hook that was never created is left alone).
	failed := func(i int, raw string, created bool) error {
		h := hooks[i]
		if record != nil {
			record(hookName(h), false, raw)
		}
		what := event + " hook"
		if reason == ReasonHelmTestFailed {
			what = "chart test"
		}
		msg := truncateTo(fmt.Sprintf("%s %s (%s) of chart %s %s failed: %s", what, hookName(h), h.Path, rel.chart, rel.version, raw), maxMessage)
		_ = r.deleteHooks(ctx, applier, hooks[:i], helm.PolicySucceeded)
		if created {
			_ = r.deleteHooks(ctx, applier, hooks[i:i+1], helm.PolicyFailed)
		}
		hs.Failure, hs.Phase, hs.Next, hs.Running = msg, "", 0, ""
		log.Info("Helm hook failed", "event", event, "hook", hookName(h), "message", raw)
		return fail(reason, true, errors.New(msg))
	}
	for int(hs.Next) < len(hooks) {
		i := int(hs.Next)
		h := hooks[i]
		name := hookName(h)
		hs.Running = name
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(h.Object.GroupVersionKind())
		err := applier.Client.Get(ctx, client.ObjectKeyFromObject(h.Object), cur)
		switch {
		case err == nil && cur.GetAnnotations()[hookRunAnnotation] == run:
			ok, msg, finished := hookState(cur, timeout, time.Now())
			if !finished {
				return false, &hooksWaiting{msg: fmt.Sprintf("running %s hook %s of chart %s %s", event, name, rel.chart, rel.version)}
			}
			if !ok {
				return false, failed(i, msg, true)
			}
			if record != nil {
				record(name, true, "")
			}
			log.Info("Helm hook succeeded", "event", event, "hook", name)
			hs.Next++
		case err == nil:
			// Left by an earlier release or run: Helm replaces it only with
			// before-hook-creation (its default) and fails otherwise.
			if !h.HasPolicy(helm.PolicyBeforeHookCreation) {
				return false, failed(i, "it already exists from an earlier release: give it helm.sh/hook-delete-policy before-hook-creation, or delete it", false)
			}
			if err := deleteHook(ctx, applier, cur); err != nil {
				return false, fail(reason, false, fmt.Errorf("deleting %s of an earlier release (before-hook-creation): %w", name, err))
			}
			return false, &hooksWaiting{msg: fmt.Sprintf("replacing %s hook %s of an earlier release", event, name)}
		case apierrors.IsNotFound(err):
			obj := h.Object.DeepCopy()
			a := obj.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			a[hookRunAnnotation] = run
			obj.SetAnnotations(a)
			if err := applier.Client.Create(ctx, obj, client.FieldOwner(FieldManager)); err != nil {
				if isRefused(err) {
					return false, failed(i, "it could not be created: "+err.Error(), false)
				}
				return false, fail(reason, false, fmt.Errorf("creating %s hook %s: %w", event, name, err))
			}
			log.Info("Helm hook created", "event", event, "hook", name, "weight", h.Weight)
			// A Job or Pod runs: the next reconcile looks. Other kinds
			// are done once created (as Helm): the loop reads it again.
		default:
			return false, fail(reason, false, fmt.Errorf("reading %s hook %s: %w", event, name, err))
		}
	}
	if err := r.deleteHooks(ctx, applier, hooks, helm.PolicySucceeded); err != nil {
		return false, fail(reason, false, err)
	}
	hs.Running = ""
	return true, nil
}

// preparedHooks gives the hooks the namespace and ownership labels of
// what the GitSync applies (copies: the release is rendered anew each sync).
func (r *GitSyncReconciler) preparedHooks(ctx context.Context, gs *sluicev1beta1.GitSync, applier *Applier, hooks []helm.Hook) ([]helm.Hook, error) {
	out := make([]helm.Hook, 0, len(hooks))
	for _, h := range hooks {
		objs, err := applier.Prepare(ctx, gs, []*unstructured.Unstructured{h.Object.DeepCopy()})
		if err != nil {
			return nil, fmt.Errorf("hook %s (%s): %w", hookName(h), h.Path, err)
		}
		if len(objs) == 1 {
			h.Object = objs[0]
			out = append(out, h)
		}
	}
	return out, nil
}

// deleteHooks deletes, last first as Helm, the hooks with policy; it goes
// on after an error (each is deleted again at the next run) and returns
// the first.
func (r *GitSyncReconciler) deleteHooks(ctx context.Context, applier *Applier, hooks []helm.Hook, policy string) error {
	var first error
	for i := len(hooks) - 1; i >= 0; i-- {
		h := hooks[i]
		// As Helm: never a CRD, whose deletion takes every custom resource with it.
		if !h.HasPolicy(policy) || h.Object.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if err := deleteHook(ctx, applier, h.Object); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Cannot delete a Helm hook", "hook", hookName(h), "policy", policy)
			if first == nil {
				first = fmt.Errorf("deleting hook %s (%s): %w", hookName(h), policy, err)
			}
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Helm hook deleted", "hook", hookName(h), "policy", policy)
	}
	return first
}

func deleteHook(ctx context.Context, applier *Applier, o *unstructured.Unstructured) error {
	err := applier.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete %s: %w", o.GetName(), err)
	}
	return nil
}

// isRefused tells the errors that retrying the same hook cannot fix.
func isRefused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsAlreadyExists(err) || meta.IsNoMatchError(err)
}

func hookName(h helm.Hook) string {
	return h.Object.GetKind() + "/" + h.Object.GetName()
}

// hookState reads a hook's outcome: a Job by its Complete or Failed
// condition, a Pod by its phase; other kinds are done once they exist.
// A Job or Pod still running after timeout has failed.
func hookState(o *unstructured.Unstructured, timeout time.Duration, now time.Time) (ok bool, msg string, finished bool) {
	switch o.GroupVersionKind().GroupKind().String() {
	case "Job.batch":
		conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["status"] != "True" {
				continue
			}
			switch m["type"] {
			case "Complete":
				return true, "", true
			case "Failed":
				return false, joinNonEmpty(str(m["reason"]), str(m["message"])), true
			}
		}
	case "Pod":
		phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		switch phase {
		case "Succeeded":
			return true, "", true
		case "Failed":
			return false, podFailure(o), true
		}
	default:
		return true, "", true
	}
	if age := now.Sub(o.GetCreationTimestamp().Time); age > timeout {
		return false, fmt.Sprintf("did not complete within %s", timeout), true
	}
	return false, "", false
}

// podFailure is the Pod's reason and message, or its first failed container's.
func podFailure(o *unstructured.Unstructured) string {
	reason, _, _ := unstructured.NestedString(o.Object, "status", "reason")
	message, _, _ := unstructured.NestedString(o.Object, "status", "message")
	if s := joinNonEmpty(reason, message); s != "" {
		return s
	}
	statuses, _, _ := unstructured.NestedSlice(o.Object, "status", "containerStatuses")
	for _, cs := range statuses {
		m, _ := cs.(map[string]any)
		t, found, _ := unstructured.NestedMap(m, "state", "terminated")
		if !found {
			continue
		}
		code, _, _ := unstructured.NestedInt64(t, "exitCode")
		if code == 0 {
			continue
		}
		return joinNonEmpty(fmt.Sprintf("container %s exited with %d", str(m["name"]), code), str(t["reason"]), str(t["message"]))
	}
	return "the Pod failed"
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func joinNonEmpty(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += ": "
		}
		out += p
	}
	return out
}

func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len("…")] + "…"
}
