// Package promotion decides how a Pipeline moves image bundles through its
// stages. Decide is a pure function of the Pipeline (spec and status), an
// observation (the latest scanned images, each stage's Canary, pull
// requests) and the time: it returns the new status and the Git writes to
// make. The controller observes, decides, acts (writes to Git, records the
// commits in the decided status) and patches the status once; everything a
// later decision needs is in that status, so a restart loses nothing and
// writes nothing twice.
package promotion

import (
	"slices"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Image is the latest image of a source, as pkg/imagescan returns it.
type Image struct {
	Repository string
	Tag        string
	Digest     string
}

// Reason is a condition reason and a message for people.
type Reason struct {
	Reason  string
	Message string
}

// ScanResult is the outcome of the last scan of a source: an image, or why
// there is none (RegistryUnreachable, InvalidPolicy, NoMatchingTag).
type ScanResult struct {
	Image Image
	Err   *Reason
}

// PullRequest is what the Git host says of a stage's open pull request.
type PullRequest struct {
	// Merged is true once merged; MergeCommit is then the commit on the branch.
	Merged      bool
	MergeCommit string
	// Closed is true when closed without merging.
	Closed bool
}

// StageObservation is what is true now of one stage.
type StageObservation struct {
	// Canary is the stage's Canary as read from its cluster; nil when it does not exist.
	Canary *sluicev1beta1.Canary
	// PullRequest is the state of status.stages[].pullRequest; nil when none is open.
	PullRequest *PullRequest
	// Commit is a commit found on the branch that already carries the
	// stage's pending bundle (its provenance trailer names it), for a write
	// made before a restart whose status patch was lost. Empty: none found.
	Commit string
	// SoakChecks are the metrics checked on the primary in this reconcile
	// (soakChecks: Metrics, a Soaking stage whose check was due); nil: none ran.
	SoakChecks *SoakChecks
	// Webhook is the stage's webhook gate's answer for the bundle waiting at it; nil: not asked.
	Webhook *WebhookAnswer
}

// Observation is what is true now, gathered by the controller before deciding.
type Observation struct {
	// Images are the scan results by source name; a source missing is not scanned yet.
	Images map[string]ScanResult
	// ConfigRevision is the applied revision of the first stage's configuration,
	// recorded in a new bundle for provenance.
	ConfigRevision string
	// Stages are the observations by stage name.
	Stages map[string]StageObservation
}

// Write is a Git write: set the bundle's images in the stage's path and
// commit (or open a pull request) with the message and its provenance.
type Write struct {
	Stage  string
	Bundle sluicev1beta1.Bundle
	// Rollback is true for a write a sluice.dev/rollback-to request asked for.
	Rollback bool
	// FromStage is the stage that verified the bundle; empty for the first
	// stage (the bundle comes from the registry) and for rollbacks.
	FromStage string
	// VerifiedBy names the release that verified the bundle in FromStage:
	// "<namespace>/<canary> release <revision> (commit <sha>)".
	VerifiedBy string
	// Message is the commit message without trailers: subject, blank line, body.
	Message string
}

// Wait is why a stage does not receive a bundle now.
type Wait struct {
	Stage  string
	Bundle string
	Reason
}

type stageReason struct {
	stage string
	Reason
}

// Event is something to announce after the status that records it is written.
type Event struct {
	Warning bool
	Reason
}

// Decision is the new status and what to do.
type Decision struct {
	Status sluicev1beta1.PipelineStatus
	// Writes are the Git writes to make, at most one per stage, in stage order.
	Writes []Write
	// Waits are the stages waiting at a gate.
	Waits []Wait
	// Events are the transitions to announce.
	Events []Event
	// RequeueAfter is when to decide again without a new observation (a
	// soak ending, a window opening); zero when nothing is timed.
	RequeueAfter time.Duration

	// What the conditions are computed from, kept so that the Record
	// methods can compute them again after the writes.
	problems []Reason
	// writeFailures are the failures of the last write, by stage, in stage
	// order; a recorded commit clears its stage's.
	writeFailures []stageReason
	now           time.Time
	generation    int64
	suspended     bool
}

// decider holds one decision in progress.
type decider struct {
	p   *sluicev1beta1.Pipeline
	o   Observation
	now time.Time
	d   Decision
}

// Decide is the next step of a Pipeline. It never mutates p.
func Decide(p *sluicev1beta1.Pipeline, o Observation, now time.Time) Decision {
	x := &decider{p: p, o: o, now: now.UTC().Truncate(time.Second)}
	x.d.Status = *p.Status.DeepCopy()
	x.d.Status.ObservedGeneration = p.Generation
	x.d.now, x.d.generation, x.d.suspended = x.now, p.Generation, p.Spec.Suspend
	x.alignStages()
	if p.Spec.Suspend {
		x.d.setConditions()
		return x.d
	}
	x.scan()
	x.handleApprove(p.Annotations[sluicev1beta1.PipelineApproveAnnotation])
	rollback := x.handleRollback(p.Annotations[sluicev1beta1.PipelineRollbackAnnotation])
	for i := range p.Spec.Stages {
		x.stage(i, rollback)
	}
	x.pruneBundles()
	x.d.setConditions()
	return x.d
}

// alignStages makes status.stages follow spec.stages: same names, same order.
func (x *decider) alignStages() {
	old := x.d.Status.Stages
	stages := make([]sluicev1beta1.PipelineStageStatus, 0, len(x.p.Spec.Stages))
	for _, s := range x.p.Spec.Stages {
		st := sluicev1beta1.PipelineStageStatus{Name: s.Name}
		if i := slices.IndexFunc(old, func(o sluicev1beta1.PipelineStageStatus) bool { return o.Name == s.Name }); i >= 0 {
			st = old[i]
		}
		stages = append(stages, st)
	}
	x.d.Status.Stages = stages
}

func (x *decider) event(warning bool, reason, msg string) {
	x.d.Events = append(x.d.Events, Event{Warning: warning, Reason: Reason{Reason: reason, Message: truncate(msg, 1024)}})
}

func (x *decider) problem(reason, msg string) {
	x.d.problems = append(x.d.problems, Reason{Reason: reason, Message: truncate(msg, 1024)})
}

// requeue keeps the earliest timed wake-up.
func (x *decider) requeue(at time.Time) {
	d := at.Sub(x.now)
	if d <= 0 {
		d = time.Second
	}
	if x.d.RequeueAfter == 0 || d < x.d.RequeueAfter {
		x.d.RequeueAfter = d
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
