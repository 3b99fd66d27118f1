package promotion

import (
	"fmt"
	"slices"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// rollbackRequest is a sluice.dev/rollback-to request accepted in this decision.
type rollbackRequest struct {
	stage, bundle string
}

// parseRequest splits "<stage>/<bundle id>".
func parseRequest(v string) (stage, bundle string, ok bool) {
	stage, bundle, ok = strings.Cut(strings.TrimSpace(v), "/")
	return stage, bundle, ok && stage != "" && bundle != ""
}

func (x *decider) handled() *sluicev1beta1.PipelineHandledRequests {
	if x.d.Status.HandledRequests == nil {
		x.d.Status.HandledRequests = &sluicev1beta1.PipelineHandledRequests{}
	}
	return x.d.Status.HandledRequests
}

func (x *decider) stageStatus(name string) (int, *sluicev1beta1.PipelineStageStatus) {
	i := slices.IndexFunc(x.d.Status.Stages, func(s sluicev1beta1.PipelineStageStatus) bool { return s.Name == name })
	if i < 0 {
		return -1, nil
	}
	return i, &x.d.Status.Stages[i]
}

// handleApprove records an approval once per annotation value: a bundle
// approved for a stage with a manual gate passes that gate (once: after
// that the bundle has been tried there).
func (x *decider) handleApprove(v string) {
	if v == "" || (x.d.Status.HandledRequests != nil && x.d.Status.HandledRequests.Approve == v) {
		return
	}
	x.handled().Approve = truncate(v, 128)
	stage, id, ok := parseRequest(v)
	if !ok {
		x.event(true, sluicev1beta1.PipelineReasonApprovalRejected, fmt.Sprintf("%s=%q is not <stage>/<bundle id>", sluicev1beta1.PipelineApproveAnnotation, v))
		return
	}
	i, st := x.stageStatus(stage)
	switch {
	case st == nil:
		x.event(true, sluicev1beta1.PipelineReasonApprovalRejected, fmt.Sprintf("approval of %s: no stage %s", id, stage))
		return
	case x.p.Spec.Stages[i].Approval != sluicev1beta1.ApprovalManual:
		x.event(true, sluicev1beta1.PipelineReasonApprovalRejected, fmt.Sprintf("approval of %s: stage %s has no manual gate", id, stage))
		return
	case x.bundleIndex(id) < 0:
		x.event(true, sluicev1beta1.PipelineReasonApprovalRejected, fmt.Sprintf("approval for %s: no bundle %s in status.bundles", stage, id))
		return
	}
	if !slices.ContainsFunc(st.Approvals, func(a sluicev1beta1.StageApproval) bool { return a.Bundle == id }) {
		st.Approvals = append(st.Approvals, sluicev1beta1.StageApproval{Bundle: id, Time: *ptrTime(x.now)})
		if n := len(st.Approvals) - sluicev1beta1.PipelineApprovalLimit; n > 0 {
			st.Approvals = slices.Delete(st.Approvals, 0, n)
		}
	}
	x.event(false, "Approved", fmt.Sprintf("bundle %s approved for %s", id, stage))
}

// handleRollback accepts a rollback request once per annotation value when
// the bundle was verified in that stage and is still known.
func (x *decider) handleRollback(v string) *rollbackRequest {
	if v == "" || (x.d.Status.HandledRequests != nil && x.d.Status.HandledRequests.RollbackTo == v) {
		return nil
	}
	x.handled().RollbackTo = truncate(v, 128)
	stage, id, ok := parseRequest(v)
	if !ok {
		x.event(true, sluicev1beta1.PipelineReasonRollbackRejected, fmt.Sprintf("%s=%q is not <stage>/<bundle id>", sluicev1beta1.PipelineRollbackAnnotation, v))
		return nil
	}
	_, st := x.stageStatus(stage)
	switch {
	case st == nil:
		x.event(true, sluicev1beta1.PipelineReasonRollbackRejected, fmt.Sprintf("rollback to %s: no stage %s", id, stage))
		return nil
	case x.bundleIndex(id) < 0:
		x.event(true, sluicev1beta1.PipelineReasonRollbackRejected, fmt.Sprintf("rollback of %s: no bundle %s in status.bundles", stage, id))
		return nil
	case !verifiedIn(st, id):
		x.event(true, sluicev1beta1.PipelineReasonRollbackRejected, fmt.Sprintf("rollback of %s: bundle %s was never verified there", stage, id))
		return nil
	case st.Bundle == id && st.State == sluicev1beta1.StageVerified:
		x.event(false, "RolledBack", fmt.Sprintf("%s already runs bundle %s", stage, id))
		return nil
	}
	return &rollbackRequest{stage: stage, bundle: id}
}

// startRollback makes the requested earlier bundle the stage's Pending
// bundle, whatever the stage was doing: a person asked for it.
func (x *decider) startRollback(st *sluicev1beta1.PipelineStageStatus, id string) {
	x.replaceCurrent(st, id, true)
	x.event(false, "RollingBack", fmt.Sprintf("%s: rolling back to bundle %s", st.Name, id))
}
