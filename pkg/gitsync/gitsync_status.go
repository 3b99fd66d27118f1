package gitsync

import (
	"errors"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// syncError is a failed step with its condition reason.
type syncError struct {
	reason string
	// stalled is true when retrying cannot help until Git or the spec change.
	stalled bool
	err     error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

func fail(reason string, stalled bool, err error) error {
	return &syncError{reason: reason, stalled: stalled, err: err}
}

// summarize sets the conditions, the failure fields and observedGeneration
// from the outcome of a sync, and tells whether the error is transient (to
// be retried with backoff). A stalled sync (the content in Git is wrong) is
// not retried before the next interval: only a new commit can fix it.
// observedGeneration advances only when the sync succeeded or stalled.
func summarize(gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, err error) (retry bool) {
	if markHooksRunning(gs, status, err) { // a Helm hook runs: not a failure (helm_hooks.go)
		return false
	}
	if err == nil {
		status.ObservedGeneration = gs.Generation
		status.LastFailureReason, status.LastFailureMessage = "", ""
		apimeta.RemoveStatusCondition(&status.Conditions, sluicev1beta1.StalledCondition)
		setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionFalse, ReasonSucceeded, "")
		setCondition(status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionTrue, ReasonSucceeded,
			"applied revision "+status.LastAppliedRevision)
		return false
	}
	var se *syncError
	if !errors.As(err, &se) {
		se = &syncError{reason: ReasonApplyFailed, err: err}
	}
	msg := truncate(se.Error())
	status.LastFailureReason, status.LastFailureMessage = se.reason, msg
	setCondition(status, gs, sluicev1beta1.ReadyCondition, metav1.ConditionFalse, se.reason, msg)
	if se.stalled {
		status.ObservedGeneration = gs.Generation
		setCondition(status, gs, sluicev1beta1.StalledCondition, metav1.ConditionTrue, se.reason, msg)
		setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionFalse, se.reason, "waiting for a change in Git or in the spec")
		return false
	}
	apimeta.RemoveStatusCondition(&status.Conditions, sluicev1beta1.StalledCondition)
	setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionTrue, ReasonProgressing, "retrying after a transient failure")
	return true
}
