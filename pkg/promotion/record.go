package promotion

import (
	"fmt"
	"slices"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The Record methods put the outcome of a Write into the decided status
// before it is patched, so that the next decision does not write again.

func (d *Decision) stage(name string) *sluicev1beta1.PipelineStageStatus {
	i := slices.IndexFunc(d.Status.Stages, func(s sluicev1beta1.PipelineStageStatus) bool { return s.Name == name })
	if i < 0 {
		return nil
	}
	return &d.Status.Stages[i]
}

// RecordCommit records the commit a direct write made (or found already
// there) for the stage's pending bundle.
func (d *Decision) RecordCommit(stage, sha string) {
	st := d.stage(stage)
	if st == nil || st.State != sluicev1beta1.StagePending {
		return
	}
	st.Commit, st.PullRequest, st.State = sha, "", sluicev1beta1.StageCommitted
	st.LastTransitionTime = ptrTime(d.now)
	st.Reason = sluicev1beta1.PipelineReasonProgressing
	st.Message = truncate(fmt.Sprintf("bundle %s committed as %s; waiting for the Canary to release it", st.Bundle, short(sha)), 1024)
	d.setWriteFailure(stage, Reason{})
	d.Events = append(d.Events, Event{Reason: Reason{Reason: "Committed", Message: st.Name + ": " + st.Message}})
	d.setConditions()
}

// RecordPullRequest records the pull request a write opened (or found open)
// for the stage's pending bundle; the stage waits for its merge.
func (d *Decision) RecordPullRequest(stage, url string) {
	st := d.stage(stage)
	if st == nil || st.State != sluicev1beta1.StagePending {
		return
	}
	st.PullRequest = truncate(url, 2048)
	st.Reason = sluicev1beta1.PipelineReasonPullRequestOpen
	st.Message = truncate(fmt.Sprintf("waiting for pull request %s to be merged", url), 1024)
	d.setWriteFailure(stage, Reason{})
	d.Events = append(d.Events, Event{Reason: Reason{Reason: sluicev1beta1.PipelineReasonPullRequestOpen, Message: st.Name + ": " + st.Message}})
	d.setConditions()
}

// RecordWriteFailure records why a write failed (SetterNotFound,
// PushRejected, GitUnreachable); nothing was written, the stage stays
// Pending and the next decision tries again. The message must hold no secret.
func (d *Decision) RecordWriteFailure(stage string, r Reason) {
	st := d.stage(stage)
	if st == nil || st.State != sluicev1beta1.StagePending {
		return
	}
	st.Reason, st.Message = r.Reason, truncate(r.Message, 1024)
	d.setWriteFailure(st.Name, Reason{Reason: r.Reason, Message: st.Name + ": " + st.Message})
	d.Events = append(d.Events, Event{Warning: true, Reason: Reason{Reason: r.Reason, Message: st.Name + ": " + st.Message}})
	d.setConditions()
}

// setWriteFailure sets (or, with an empty reason, clears) a stage's write failure.
func (d *Decision) setWriteFailure(stage string, r Reason) {
	d.writeFailures = slices.DeleteFunc(d.writeFailures, func(f stageReason) bool { return f.stage == stage })
	if r.Reason != "" {
		d.writeFailures = append(d.writeFailures, stageReason{stage: stage, Reason: r})
	}
}
