package gitsync

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ReasonHelmUpgradeFailed is the reason of a new release of the chart that
// failed its health checks spec.helm.upgrade.remediation.retries+1 times:
// the last healthy release was applied again in its place (or could not
// be). It stays so (Stalled, no retry at every interval) until the spec,
// the Git revision, the values or the chart version change.
const ReasonHelmUpgradeFailed = "HelmUpgradeFailed"

// defaultMaxHistory is spec.helm.maxHistory's default (also for GitSyncs
// created before the field had one).
const defaultMaxHistory = 5

// helmPlan is what one sync of a chart does about the release history:
// record a healthy release, count a failed one, or apply the last healthy
// release instead of one whose retries are exhausted. Every decision is
// made from status, so that a restart continues a remediation.
type helmPlan struct {
	r       *GitSyncReconciler
	gs      *sluicev1beta1.GitSync
	status  *sluicev1beta1.GitSyncStatus
	release *helmRelease
	// digest identifies the rendered release (Digest of its objects before
	// Prepare, which adds what depends on the cluster: namespaces defaulted,
	// labels, primaries left out).
	digest string
	// objs are the rendered objects, kept for the release Secret.
	objs []*unstructured.Unstructured
	// gitRevision is the revision fetched.
	gitRevision string
	// rollback is the release applied instead of the rendered one, or nil.
	rollback *sluicev1beta1.GitSyncHelmRelease
}

// helmRemediation plans the sync of a rendered chart (nil, objs for
// kustomize output). When the rendered release already failed its health
// checks more than spec.helm.upgrade.remediation.retries times, with the
// same spec and Git revision, it returns the objects of the last healthy
// release instead: applying them (and pruning what they do not hold) is the
// rollback. The release it returns is the one the rest of the sync records
// and runs the hooks of: nil during a rollback, whose objects are not the
// rendered release's (finish records the release rolled back to).
func (r *GitSyncReconciler) helmRemediation(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus,
	release *helmRelease, gitRevision string, objs []*unstructured.Unstructured) (*helmPlan, []*unstructured.Unstructured, *helmRelease, error) {
	p, objs, err := r.planRelease(ctx, gs, status, release, gitRevision, objs)
	if err != nil || p == nil || p.rollback == nil {
		return p, objs, release, err
	}
	return p, objs, nil, nil
}

func (r *GitSyncReconciler) planRelease(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus,
	release *helmRelease, gitRevision string, objs []*unstructured.Unstructured) (*helmPlan, []*unstructured.Unstructured, error) {
	if release == nil {
		return nil, objs, nil
	}
	digest, err := Digest(objs)
	if err != nil {
		return nil, nil, fail(ReasonBuildFailed, true, err)
	}
	p := &helmPlan{r: r, gs: gs, status: status, release: release, digest: digest, gitRevision: gitRevision, objs: make([]*unstructured.Unstructured, len(objs))}
	for i, o := range objs {
		p.objs[i] = o.DeepCopy()
	}
	if status.Helm == nil {
		status.Helm = &sluicev1beta1.GitSyncHelmStatus{}
	}
	rem := status.Helm.Remediation
	if rem != nil && !p.sameAttempt(rem) {
		// The spec, Git, the values or the chart changed: a new attempt.
		status.Helm.Remediation = nil
		return p, objs, nil
	}
	if rem == nil || !remediationEnabled(gs) || rem.Failures <= retries(gs) {
		return p, objs, nil
	}
	good := lastDeployed(status.Helm.History)
	if good == nil {
		return p, objs, nil
	}
	back, err := r.loadRelease(ctx, gs, *good)
	if err != nil {
		return nil, nil, fail(ReasonHelmUpgradeFailed, true, fmt.Errorf("%s; cannot roll back to revision %d: %w", p.failedText(rem), good.Revision, err))
	}
	if rem.RolledBackTo == 0 {
		ctrl.LoggerFrom(ctx).Info("Rolling back a release that failed its health checks", "failedRevision", rem.Revision,
			"chartVersion", rem.ChartVersion, "toRevision", good.Revision, "toChartVersion", good.ChartVersion)
	}
	p.rollback = good
	return p, back, nil
}

// sameAttempt tells whether rem is about the release this sync rendered,
// at the same spec and Git revision.
func (p *helmPlan) sameAttempt(rem *sluicev1beta1.GitSyncHelmRemediationStatus) bool {
	return rem.Digest == p.digest && rem.Generation == p.gs.Generation && rem.GitRevision == p.gitRevision
}

// finish records the outcome of the sync in status.helm and turns it into
// the sync's error: a rollback that is applied and healthy is the failure
// HelmUpgradeFailed, stalled (nothing changes until the inputs do).
func (p *helmPlan) finish(ctx context.Context, err error) error {
	if p == nil {
		return err
	}
	h := p.status.Helm
	if p.rollback != nil {
		// status.helm tells the release that runs: the one rolled back to.
		h.ChartVersion, h.ValuesDigest = p.rollback.ChartVersion, p.rollback.ValuesDigest
		rem := h.Remediation
		if err != nil {
			// Retried with backoff: the rollback is applied again.
			return fail(ReasonHelmUpgradeFailed, false, fmt.Errorf("%s; the rollback to revision %d (chart version %s) failed too: %w",
				p.failedText(rem), p.rollback.Revision, p.rollback.ChartVersion, err))
		}
		if rem.RolledBackTo == 0 {
			rem.RolledBackTo = p.rollback.Revision
			if e := findRelease(h.History, rem.Revision); e != nil {
				e.Status, e.Time = sluicev1beta1.GitSyncHelmReleaseRolledBack, metav1.NewTime(p.r.clock().Now())
			}
		}
		return fail(ReasonHelmUpgradeFailed, true, fmt.Errorf("%s; rolled back to revision %d (chart %s %s)",
			p.failedText(rem), p.rollback.Revision, p.release.chart, p.rollback.ChartVersion))
	}
	if err == nil {
		return p.recordHealthy(ctx)
	}
	var se *syncError
	if errors.As(err, &se) && se.reason == ReasonHealthCheckFailed && !se.stalled {
		p.recordUnhealthy(ctx, err)
	}
	if isCheckFailed(err) { // a post hook or chart test (helm_hook_remediation.go)
		p.recordUnhealthy(ctx, err)
		return p.retryAfterCheck(err)
	}
	return err
}

// failedText describes the failed release and its last health failure.
func (p *helmPlan) failedText(rem *sluicev1beta1.GitSyncHelmRemediationStatus) string {
	return fmt.Sprintf("the upgrade to chart %s %s (revision %d) failed %s %d %s: %s",
		p.release.chart, rem.ChartVersion, rem.Revision, failedWhat(rem.Message), rem.Failures, plural(int(rem.Failures), "time"), rem.Message)
}

// recordUnhealthy counts a health check failure of an upgrade. A release
// with nothing healthy before it (a first install), or the healthy release
// itself failing later, is not an upgrade to remediate.
func (p *helmPlan) recordUnhealthy(ctx context.Context, err error) {
	h := p.status.Helm
	good := lastDeployed(h.History)
	if !remediationEnabled(p.gs) || good == nil || good.Digest == p.digest {
		return
	}
	rem := h.Remediation
	if rem == nil {
		rem = &sluicev1beta1.GitSyncHelmRemediationStatus{
			Revision: nextRevision(h.History), ChartVersion: p.release.version, Digest: p.digest,
			GitRevision: p.gitRevision, Generation: p.gs.Generation,
		}
		h.Remediation = rem
		h.History = append(h.History, p.entry(rem.Revision, sluicev1beta1.GitSyncHelmReleaseFailed))
		p.trim(ctx, rem.Revision)
	}
	rem.Failures++
	rem.Message = boundMessage(scrubCredentials(err.Error()), 1024)
	log := ctrl.LoggerFrom(ctx)
	if rem.Failures > retries(p.gs) {
		log.Info("Release failed its health checks, retries exhausted", "revision", rem.Revision, "failures", rem.Failures, "rollbackTo", good.Revision)
		return
	}
	log.Info("Release failed its health checks, retrying", "revision", rem.Revision, "failures", rem.Failures, "retries", retries(p.gs))
}

// recordHealthy records a healthy release: a new one is stored in its
// Secret (first: status must not name a Secret that does not exist), added
// to the history as Deployed and supersedes the previous one.
func (p *helmPlan) recordHealthy(ctx context.Context) error {
	h := p.status.Helm
	h.Remediation = nil
	cur := lastDeployed(h.History)
	if cur != nil && cur.Digest == p.digest {
		return nil
	}
	rev := nextRevision(h.History)
	if n := len(h.History); n > 0 && h.History[n-1].Digest == p.digest {
		rev = h.History[n-1].Revision // a failed release that became healthy
	}
	hooks, hooksDigest, err := encodeDeleteHooks(p.release.hookList)
	if err != nil {
		return fail(ReasonApplyFailed, false, err)
	}
	if err := p.r.storeRelease(ctx, p.gs, rev, p.objs, hooks); err != nil {
		if !errors.Is(err, errReleaseTooLarge) {
			return fail(ReasonApplyFailed, false, fmt.Errorf("failed to store release revision %d for rollbacks: %w", rev, err))
		}
		ctrl.LoggerFrom(ctx).Error(err, "Release not stored: it cannot be rolled back to", "revision", rev)
	}
	if cur != nil {
		cur.Status, cur.Time = sluicev1beta1.GitSyncHelmReleaseSuperseded, metav1.NewTime(p.r.clock().Now())
	}
	entry := p.entry(rev, sluicev1beta1.GitSyncHelmReleaseDeployed)
	entry.DeleteHooksDigest = hooksDigest
	if e := findRelease(h.History, rev); e != nil {
		*e = entry
	} else {
		h.History = append(h.History, entry)
	}
	p.trim(ctx, rev)
	return nil
}

// trim bounds the history to spec.helm.maxHistory and deletes the Secrets
// of the releases it drops.
func (p *helmPlan) trim(ctx context.Context, keep int32) {
	h := p.status.Helm
	var dropped []int32
	h.History, dropped = trimHistory(h.History, maxHistory(p.gs), keep)
	if err := p.r.deleteReleases(ctx, p.gs, dropped); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot delete the Secrets of old releases; the garbage collector deletes them with the GitSync")
	}
}

func (p *helmPlan) entry(rev int32, s sluicev1beta1.GitSyncHelmReleaseStatus) sluicev1beta1.GitSyncHelmRelease {
	return sluicev1beta1.GitSyncHelmRelease{
		Revision: rev, ChartVersion: p.release.version, ValuesDigest: p.release.valuesDigest, Digest: p.digest,
		Status: s, Time: metav1.NewTime(p.r.clock().Now()),
	}
}

func remediationEnabled(gs *sluicev1beta1.GitSync) bool {
	return gs.Spec.Helm != nil && gs.Spec.Helm.Upgrade != nil && gs.Spec.Helm.Upgrade.Remediation != nil
}

func retries(gs *sluicev1beta1.GitSync) int32 {
	if !remediationEnabled(gs) {
		return 0
	}
	return gs.Spec.Helm.Upgrade.Remediation.Retries
}

func maxHistory(gs *sluicev1beta1.GitSync) int {
	if gs.Spec.Helm == nil || gs.Spec.Helm.MaxHistory <= 0 {
		return defaultMaxHistory
	}
	return int(gs.Spec.Helm.MaxHistory)
}

func boundMessage(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len("…")] + "…"
}
