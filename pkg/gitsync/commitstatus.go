package gitsync

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

// ReasonCommitStatusFailed is the reason of the Warning event of a commit
// status the Git host did not take. It never fails a sync.
const ReasonCommitStatusFailed = "CommitStatusFailed"

// commitStatusTimeout bounds one post with its retries: the sync waits for
// it, so that pending is on the commit before the apply and never after
// the outcome.
const commitStatusTimeout = 45 * time.Second

// The commit status of a revision is kept in status.commitStatus and
// posted only after the status write that records it: pending when a new
// revision is about to be applied (one extra status write per revision),
// success or failure with the sync's final status write. A state recorded
// already is not posted again.

// commitStatusPending records pending for a revision new to the commit
// status, writes it, and posts it. A failed write leaves pending unposted:
// the outcome follows anyway.
func (r *GitSyncReconciler) commitStatusPending(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, revision string) {
	sha := commitstatus.SHAFromRevision(revision)
	if gs.Spec.CommitStatus == nil || sha == "" {
		return
	}
	if cur := status.CommitStatus; cur != nil && cur.SHA == sha {
		return
	}
	status.CommitStatus = &sluicev1beta1.GitSyncCommitStatusRecord{SHA: sha, State: sluicev1beta1.CommitStatusPending}
	// A copy: patchStatus keeps what it wrote as gs.Status, and the sync
	// goes on changing its own status.
	if err := r.patchStatus(ctx, gs, status.DeepCopy()); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to record the pending commit status; not posting it", "commit", sha)
		return
	}
	r.setCommitStatus(ctx, gs, *status.CommitStatus, "Applying "+short(sha)+r.onCluster())
}

// commitStatusOutcome records the outcome of the sync of revision in
// status; postCommitStatus posts it once written.
func (r *GitSyncReconciler) commitStatusOutcome(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, revision string, err error) {
	sha := commitstatus.SHAFromRevision(revision)
	if gs.Spec.CommitStatus == nil || sha == "" || isHooksWaiting(err) {
		return // a running Helm hook leaves the commit status pending
	}
	state := sluicev1beta1.CommitStatusSuccess
	if err != nil {
		state = sluicev1beta1.CommitStatusFailure
	}
	status.CommitStatus = &sluicev1beta1.GitSyncCommitStatusRecord{SHA: sha, State: state}
}

// postCommitStatus posts the commit status that the status write just made
// recorded, unless before (the record as it was) holds it already.
func (r *GitSyncReconciler) postCommitStatus(ctx context.Context, gs *sluicev1beta1.GitSync, before *sluicev1beta1.GitSyncCommitStatusRecord) {
	rec := gs.Status.CommitStatus
	if gs.Spec.CommitStatus == nil || rec == nil || (before != nil && *before == *rec) {
		return
	}
	desc := "Applied" + r.onCluster()
	if rec.State == sluicev1beta1.CommitStatusFailure {
		desc = gs.Status.LastFailureReason + ": " + gs.Status.LastFailureMessage
	}
	r.setCommitStatus(ctx, gs, *rec, desc)
}

// setCommitStatus posts one status. A failure is a Warning event (and the
// provider's log line), never a sync failure.
func (r *GitSyncReconciler) setCommitStatus(ctx context.Context, gs *sluicev1beta1.GitSync, rec sluicev1beta1.GitSyncCommitStatusRecord, desc string) {
	log := ctrl.LoggerFrom(ctx).WithValues("commit", rec.SHA, "state", string(rec.State))
	ctx, cancel := context.WithTimeout(ctx, commitStatusTimeout)
	defer cancel()
	p, err := commitstatus.ForGitSync(ctx, r.APIReader, gs, commitstatus.Config{Logger: log.WithName("commit-status")})
	if err == nil {
		log.V(1).Info("Setting the commit status")
		err = p.Set(ctx, commitstatus.Status{
			SHA: rec.SHA, State: commitstatus.State(rec.State), Context: commitstatus.GitSyncContext(gs, r.ClusterName), Description: desc,
		})
	} else {
		log.Error(err, "Cannot set the commit status")
	}
	if err != nil {
		r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, ReasonCommitStatusFailed, "SetCommitStatus",
			"failed to set the %s commit status of %s: %s", rec.State, short(rec.SHA), truncate(err.Error()))
	}
}

func (r *GitSyncReconciler) onCluster() string {
	if r.ClusterName == "" {
		return ""
	}
	return fmt.Sprintf(" on %s", r.ClusterName)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
