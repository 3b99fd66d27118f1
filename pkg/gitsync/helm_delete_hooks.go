package gitsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
)

// The pre-delete and post-delete hooks of a chart run when its GitSync is
// deleted, around the prune. They are those of the release running then:
// the last Deployed release of status.helm.history, whose Secret keeps them
// next to its objects (rendering the chart again at deletion could give
// other hooks, or fail: the repository may be gone). Their digest is in
// status, written by Sluice alone, so a hook planted in the Secret by
// someone else is refused rather than run as the GitSync's identity.

const (
	// deleteHooksKey holds the gzip of the JSON list of the delete hooks.
	deleteHooksKey = "deleteHooks.json.gz"
	// deleteRun is status.helm.hooks.attemptedRevision during a deletion:
	// the hooks of the deletion run once, and a restart continues them.
	deleteRun = "delete"
)

// storedHook is a hook as the release Secret keeps it.
type storedHook struct {
	Object         map[string]any `json:"object"`
	Path           string         `json:"path"`
	Events         []string       `json:"events"`
	Weight         int            `json:"weight"`
	DeletePolicies []string       `json:"deletePolicies,omitempty"`
}

// encodeDeleteHooks keeps the pre-delete and post-delete hooks of hooks:
// the gzip of their JSON list and the sha256 of that JSON, or nothing when
// there are none.
func encodeDeleteHooks(hooks []helm.Hook) (data []byte, digest string, err error) {
	var list []storedHook
	for _, h := range hooks {
		if h.Has(helm.EventPreDelete) || h.Has(helm.EventPostDelete) {
			list = append(list, storedHook{Object: h.Object.Object, Path: h.Path, Events: h.Events, Weight: h.Weight, DeletePolicies: h.DeletePolicies})
		}
	}
	if len(list) == 0 {
		return nil, "", nil
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, "", fmt.Errorf("failed to encode the delete hooks: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, "", fmt.Errorf("failed to compress the delete hooks: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("failed to compress the delete hooks: %w", err)
	}
	return buf.Bytes(), hooksDigest(raw), nil
}

func hooksDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// decodeDeleteHooks reverses encodeDeleteHooks (reading at most
// maxReleaseObjects) and checks the digest.
func decodeDeleteHooks(data []byte, digest string) ([]helm.Hook, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to decompress the delete hooks: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxReleaseObjects+1))
	if err != nil {
		return nil, fmt.Errorf("failed to decompress the delete hooks: %w", err)
	}
	if len(raw) > maxReleaseObjects {
		return nil, fmt.Errorf("the delete hooks decompress to more than %d bytes", maxReleaseObjects)
	}
	if got := hooksDigest(raw); got != digest {
		return nil, fmt.Errorf("the delete hooks have digest %s, not the %s recorded in status", got, digest)
	}
	var list []storedHook
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("failed to decode the delete hooks: %w", err)
	}
	out := make([]helm.Hook, len(list))
	for i, h := range list {
		out[i] = helm.Hook{Object: &unstructured.Unstructured{Object: h.Object}, Path: h.Path, Events: h.Events, Weight: h.Weight, DeletePolicies: h.DeletePolicies}
	}
	return out, nil
}

// loadDeleteHooks reads the delete hooks of a release from its Secret.
func (r *GitSyncReconciler) loadDeleteHooks(ctx context.Context, gs *sluicev1beta1.GitSync, rel sluicev1beta1.GitSyncHelmRelease) ([]helm.Hook, error) {
	if rel.DeleteHooksDigest == "" {
		return nil, nil
	}
	name := releaseSecretName(gs.Name, rel.Revision)
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("failed to read Secret %s: %w", name, err)
	}
	if !metav1.IsControlledBy(s, gs) {
		return nil, fmt.Errorf("secret %s is not owned by this GitSync", name)
	}
	hooks, err := decodeDeleteHooks(s.Data[deleteHooksKey], rel.DeleteHooksDigest)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return hooks, nil
}

// finalizeHelm runs the delete hooks of a chart's GitSync being deleted:
// its pre-delete hooks, then prune, then its post-delete hooks, one
// reconcile step at a time (a running hook returns a requeue; the progress
// is in status.helm.hooks, so a restart continues). A failed or timed-out
// hook does not keep the GitSync forever: it is reported (Ready=False
// HelmHookFailed and a Warning event naming it) and the deletion goes on,
// so the hooks timeout bounds how long a deletion waits. A release without
// delete hooks (or whose hooks cannot be read: reported likewise) is only
// pruned. A zero wait and no error let the finalizer go.
func (r *GitSyncReconciler) finalizeHelm(ctx context.Context, gs *sluicev1beta1.GitSync, applier *Applier, prune func() error) (time.Duration, error) {
	log := ctrl.LoggerFrom(ctx)
	status := gs.Status.DeepCopy()
	var good *sluicev1beta1.GitSyncHelmRelease
	if status.Helm != nil {
		good = lastDeployed(status.Helm.History)
	}
	if good == nil || good.DeleteHooksDigest == "" {
		return 0, prune()
	}
	hooks, err := r.loadDeleteHooks(ctx, gs, *good)
	if err != nil {
		if hs := hooksStatus(status); hs.AttemptedRevision != deleteRun || hs.Failure == "" {
			msg := fmt.Sprintf("the delete hooks of revision %d (chart %s %s) are not run: %s", good.Revision, status.Helm.ChartName, good.ChartVersion, err)
			r.deleteHookFailed(ctx, gs, status, msg)
		}
		return 0, prune()
	}
	hs := hooksStatus(status)
	rel := &helmRelease{chart: status.Helm.ChartName, version: good.ChartVersion, hookList: hooks}
	if hs.AttemptedRevision != deleteRun {
		hs.AttemptedRevision, hs.Phase, hs.Next, hs.Running, hs.Failure = deleteRun, sluicev1beta1.GitSyncHelmPreDelete, 0, "", ""
		hs.Attempt++
		log.Info("Running the delete hooks of the release", "revision", good.Revision, "chart", rel.chart, "version", rel.version)
	}
	// step runs the hooks of hs.Phase: done, or wait (a requeue), or a
	// transient error; a failure is reported and counts as done.
	step := func() (bool, time.Duration, error) {
		done, err := r.runHooks(ctx, gs, applier, hs, rel, ReasonHelmHookFailed, r.hookTimeout(gs), nil)
		switch {
		case done:
			return true, 0, nil
		case isHooksWaiting(err):
			markHooksRunning(gs, status, err)
			return false, hooksPoll, r.patchStatus(ctx, gs, status)
		}
		var se *syncError
		if errors.As(err, &se) && se.stalled {
			r.deleteHookFailed(ctx, gs, status, hs.Failure+"; the deletion goes on")
			return true, 0, nil
		}
		return false, 0, errors.Join(err, r.patchStatus(ctx, gs, status))
	}
	if hs.Phase == sluicev1beta1.GitSyncHelmPreDelete {
		if done, wait, err := step(); !done {
			return wait, err
		}
	}
	if hs.Phase != sluicev1beta1.GitSyncHelmPostDelete {
		// After the pre-delete hooks, succeeded or failed (runHooks clears
		// the phase on a failure).
		if err := prune(); err != nil {
			return 0, errors.Join(err, r.patchStatus(ctx, gs, status))
		}
		// The inventory stays: a restart from here must still reach the
		// post-delete hooks (finalize runs them only with an inventory),
		// and pruning again what is gone deletes nothing.
		hs.Phase, hs.Next, hs.Running = sluicev1beta1.GitSyncHelmPostDelete, 0, ""
		if err := r.patchStatus(ctx, gs, status); err != nil {
			return 0, err
		}
	}
	if done, wait, err := step(); !done {
		return wait, err
	}
	log.Info("Delete hooks done", "chart", rel.chart, "version", rel.version)
	return 0, nil
}

// deleteHookFailed records a failed delete hook: Ready=False with reason
// HelmHookFailed in status (written first), then a Warning event.
func (r *GitSyncReconciler) deleteHookFailed(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, msg string) {
	msg = truncate(scrubCredentials(msg))
	setCondition(status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, ReasonHelmHookFailed, msg)
	if err := r.patchStatus(ctx, gs, status); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot record a failed delete hook")
	}
	ctrl.LoggerFrom(ctx).Info("Helm delete hook failed; deleting anyway", "message", msg)
	if r.Recorder != nil {
		r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, ReasonHelmHookFailed, "Delete", "%s", msg)
	}
}
