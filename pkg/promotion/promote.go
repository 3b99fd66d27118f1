package promotion

import (
	"fmt"
	"slices"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// promoteNext picks the stage's next bundle and lets it through the gates:
// hold, manual approval, windows, webhook. A bundle that passes becomes the stage's
// Pending bundle, which emitWrite writes.
func (x *decider) promoteNext(i int, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus) {
	cand := x.candidate(i)
	if cand == "" {
		st.Gate = nil
		return
	}
	if gate := x.gate(spec, st, cand); gate != nil {
		st.Gate = gate
		x.d.Waits = append(x.d.Waits, Wait{Stage: spec.Name, Bundle: cand, Reason: Reason{Reason: gate.Reason, Message: gate.Message}})
		return
	}
	st.Gate = nil
	x.replaceCurrent(st, cand, false)
}

// candidate is the bundle automation would write to stage i: for the first
// stage the newest bundle found, for the others the newest bundle verified
// in the stage before. It must be newer than the stage's current bundle
// (automation never goes back, so a rollback stays) and never tried there
// before (a failed bundle is not retried, a verified one not rewritten).
func (x *decider) candidate(i int) string {
	st := &x.d.Status.Stages[i]
	cur := x.bundleIndex(st.Bundle)
	for j := len(x.d.Status.Bundles) - 1; j > cur; j-- {
		id := x.d.Status.Bundles[j].ID
		if i > 0 && !verifiedIn(&x.d.Status.Stages[i-1], id) {
			continue
		}
		if triedIn(st, id) {
			return ""
		}
		return id
	}
	return ""
}

// verifiedIn tells whether a bundle was verified in a stage (now or before).
func verifiedIn(st *sluicev1beta1.PipelineStageStatus, id string) bool {
	if st.Bundle == id && st.State == sluicev1beta1.StageVerified {
		return true
	}
	return slices.ContainsFunc(st.History, func(r sluicev1beta1.StageRecord) bool {
		return r.Bundle == id && r.State == sluicev1beta1.StageVerified
	})
}

func triedIn(st *sluicev1beta1.PipelineStageStatus, id string) bool {
	return st.Bundle == id || slices.ContainsFunc(st.History, func(r sluicev1beta1.StageRecord) bool { return r.Bundle == id })
}

// gate is why the candidate may not be written now; nil when it may.
func (x *decider) gate(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, cand string) *sluicev1beta1.StageGate {
	g := &sluicev1beta1.StageGate{Bundle: cand}
	switch {
	case spec.Hold != nil:
		g.Reason = sluicev1beta1.PipelineReasonHeld
		g.Message = fmt.Sprintf("stage %s is held (%s): remove spec.stages[].hold to let bundle %s in", spec.Name, spec.Hold.Reason, cand)
	case spec.Approval == sluicev1beta1.ApprovalManual && !slices.ContainsFunc(st.Approvals, func(a sluicev1beta1.StageApproval) bool { return a.Bundle == cand }):
		g.Reason = sluicev1beta1.PipelineReasonWaitingForApproval
		g.Message = fmt.Sprintf("bundle %s waits for approval: kubectl sluice promote-stage %s %s -n %s (sets %s=%s/%s)",
			cand, x.p.Name, spec.Name, x.p.Namespace, sluicev1beta1.PipelineApproveAnnotation, spec.Name, cand)
	default:
		open, next, err := windowsOpen(spec.Windows, x.now)
		switch {
		case err != nil:
			g.Reason = sluicev1beta1.PipelineReasonInvalidTimeZone
			g.Message = err.Error()
			x.problem(g.Reason, spec.Name+": "+g.Message)
		case !open:
			g.Reason = sluicev1beta1.PipelineReasonOutsidePromotionWindow
			g.Message = fmt.Sprintf("bundle %s waits for the next promotion window, %s", cand, next.UTC().Format("2006-01-02T15:04:05Z"))
			x.requeue(next)
		case x.webhookOpen(spec, st, g):
			return nil
		}
	}
	g.Message = truncate(g.Message, 1024)
	return g
}

// replaceCurrent makes a bundle the stage's Pending bundle; the current one
// goes to the history with the state it ended in.
func (x *decider) replaceCurrent(st *sluicev1beta1.PipelineStageStatus, id string, rollback bool) {
	if st.Bundle != "" {
		rec := sluicev1beta1.StageRecord{
			Bundle: st.Bundle, Commit: st.Commit, State: st.State, Reason: st.Reason, Release: st.Release, Time: *ptrTime(x.now),
		}
		if busy(st.State) || st.State == "" {
			rec.State, rec.Reason = sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonSuperseded
		}
		st.History = append(st.History, rec)
		if n := len(st.History) - sluicev1beta1.PipelineStageHistoryLimit; n > 0 {
			st.History = slices.Delete(st.History, 0, n)
		}
	}
	st.Bundle, st.Commit, st.PullRequest, st.Release, st.PromotedAt, st.Rollback = id, "", "", "", nil, rollback
	st.SoakChecks, st.LastSoakCheck = nil, nil
	st.Gate = nil
	st.State = ""
	x.setState(st, sluicev1beta1.StagePending, sluicev1beta1.PipelineReasonProgressing, fmt.Sprintf("writing bundle %s", id))
}

// emitWrite writes the stage's Pending bundle until a commit or a pull
// request is recorded: after a restart that lost the status patch the same
// write is decided again, and the Git writer finds it already there. A held
// stage gets no write but a requested rollback.
func (x *decider) emitWrite(i int, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus) {
	if st.State != sluicev1beta1.StagePending || st.Commit != "" || st.PullRequest != "" {
		return
	}
	if spec.Hold != nil && !st.Rollback {
		st.Reason = sluicev1beta1.PipelineReasonHeld
		st.Message = truncate(fmt.Sprintf("stage %s is held (%s): bundle %s is not written", spec.Name, spec.Hold.Reason, st.Bundle), 1024)
		return
	}
	b, ok := x.bundle(st.Bundle)
	if !ok {
		x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonSuperseded, fmt.Sprintf("bundle %s is no longer known", st.Bundle))
		return
	}
	w := Write{Stage: spec.Name, Bundle: *b.DeepCopy(), Rollback: st.Rollback}
	if !st.Rollback && i > 0 {
		prev := &x.p.Spec.Stages[i-1]
		w.FromStage = prev.Name
		w.VerifiedBy = verifiedBy(x.p, prev, &x.d.Status.Stages[i-1], b.ID)
	}
	w.Message = commitMessage(w)
	x.d.Writes = append(x.d.Writes, w)
	if isWriteFailure(st.Reason) {
		// The last attempt failed: the reason stays until a commit is recorded.
		x.d.setWriteFailure(st.Name, Reason{Reason: st.Reason, Message: st.Name + ": " + st.Message})
	}
}

// verifiedBy names the release that verified a bundle in a stage.
func verifiedBy(p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, id string) string {
	release, commit := st.Release, st.Commit
	if st.Bundle != id {
		for _, r := range slices.Backward(st.History) {
			if r.Bundle == id && r.State == sluicev1beta1.StageVerified {
				release, commit = r.Release, r.Commit
				break
			}
		}
	}
	if release == "" {
		// Adopted: no release ran there (see adopt.go).
		return fmt.Sprintf("%s, adopted (the branch already held it at commit %s; no release ran)", canaryName(p, spec), short(commit))
	}
	return fmt.Sprintf("%s release %s (commit %s)", canaryName(p, spec), release, short(commit))
}

func isWriteFailure(reason string) bool {
	switch reason {
	case sluicev1beta1.PipelineReasonSetterNotFound, sluicev1beta1.PipelineReasonPushRejected, sluicev1beta1.PipelineReasonGitUnreachable:
		return true
	}
	return false
}
