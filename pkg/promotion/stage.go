package promotion

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// stage decides one stage: follow its current bundle to a verdict, then
// start a rollback or let the next bundle through the gates, then write.
func (x *decider) stage(i int, rb *rollbackRequest) {
	spec := &x.p.Spec.Stages[i]
	st := &x.d.Status.Stages[i]
	x.progress(spec, st, x.o.Stages[spec.Name])
	switch {
	case rb != nil && rb.stage == spec.Name:
		x.startRollback(st, rb.bundle)
	case busy(st.State):
		st.Gate = nil
	default:
		x.promoteNext(i, spec, st)
	}
	x.emitWrite(i, spec, st)
}

// busy states are those of a bundle on its way: the stage takes no other
// bundle until this one is verified or failed.
func busy(s sluicev1beta1.StageState) bool {
	switch s {
	case sluicev1beta1.StagePending, sluicev1beta1.StageCommitted, sluicev1beta1.StageVerifying, sluicev1beta1.StageSoaking:
		return true
	}
	return false
}

// setState moves the stage's current bundle to a state, with a transition
// time and an event when the state changes.
func (x *decider) setState(st *sluicev1beta1.PipelineStageStatus, s sluicev1beta1.StageState, reason, msg string) {
	msg = truncate(msg, 1024)
	if st.State != s {
		st.LastTransitionTime = ptrTime(x.now)
		x.event(s == sluicev1beta1.StageFailed, reason, fmt.Sprintf("%s: %s", st.Name, msg))
	}
	st.State, st.Reason, st.Message = s, reason, msg
}

// progress follows the current bundle: its pull request, its commit, the
// Canary's release of that commit and the soak.
func (x *decider) progress(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, o StageObservation) {
	if st.State == sluicev1beta1.StagePending {
		switch {
		case st.PullRequest != "" && o.PullRequest != nil && o.PullRequest.Merged && o.PullRequest.MergeCommit != "":
			x.committed(st, o.PullRequest.MergeCommit)
		case st.PullRequest != "" && o.PullRequest != nil && o.PullRequest.Closed:
			x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonPullRequestClosed,
				fmt.Sprintf("pull request %s was closed without merging bundle %s", st.PullRequest, st.Bundle))
			return
		case st.PullRequest != "":
			st.Reason = sluicev1beta1.PipelineReasonPullRequestOpen
			st.Message = truncate(fmt.Sprintf("waiting for pull request %s to be merged", st.PullRequest), 1024)
			return
		case st.Commit == "" && o.Commit != "":
			x.committed(st, o.Commit)
		default:
			return
		}
	}
	switch st.State {
	case sluicev1beta1.StageCommitted, sluicev1beta1.StageVerifying:
		if x.adopting(spec, st, o) {
			return
		}
		x.verdict(spec, st, o)
	case sluicev1beta1.StageSoaking:
		x.soak(spec, st, o)
	}
}

func (x *decider) committed(st *sluicev1beta1.PipelineStageStatus, sha string) {
	st.Commit, st.PullRequest = sha, ""
	x.setState(st, sluicev1beta1.StageCommitted, sluicev1beta1.PipelineReasonProgressing,
		fmt.Sprintf("bundle %s committed as %s; waiting for the Canary to release it", st.Bundle, short(sha)))
}

// verdict reads the Canary's verdict on exactly the release the stage's
// commit started: a release from another commit never verifies the bundle.
func (x *decider) verdict(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, o StageObservation) {
	c := o.Canary
	if c == nil {
		st.Reason = sluicev1beta1.PipelineReasonCanaryNotFound
		st.Message = truncate(fmt.Sprintf("Canary %s not found", canaryName(x.p, spec)), 1024)
		x.problem(st.Reason, st.Name+": "+st.Message)
		return
	}
	rec := releaseOf(c, st.Commit)
	if rec == nil {
		if c.Status.Source != nil && commitOf(c.Status.Source.Revision) == st.Commit {
			st.Release = c.Status.Source.Release
			x.setState(st, sluicev1beta1.StageVerifying, sluicev1beta1.PipelineReasonProgressing,
				fmt.Sprintf("Canary %s is releasing %s (commit %s)", canaryName(x.p, spec), st.Release, short(st.Commit)))
			return
		}
		if st.Reason != sluicev1beta1.PipelineReasonProgressing {
			st.Reason, st.Message = sluicev1beta1.PipelineReasonProgressing,
				truncate(fmt.Sprintf("waiting for Canary %s to release commit %s", canaryName(x.p, spec), short(st.Commit)), 1024)
		}
		return
	}
	st.Release = rec.Revision
	switch rec.Outcome {
	case sluicev1beta1.DeliveryRunning:
		x.setState(st, sluicev1beta1.StageVerifying, sluicev1beta1.PipelineReasonProgressing,
			fmt.Sprintf("Canary %s is releasing %s (commit %s)", canaryName(x.p, spec), rec.Revision, short(st.Commit)))
	case sluicev1beta1.DeliveryPromoted:
		at := x.now
		if rec.EndTime != nil {
			at = rec.EndTime.UTC()
		}
		st.PromotedAt = ptrTime(at)
		st.SoakChecks, st.LastSoakCheck = nil, nil
		x.setState(st, sluicev1beta1.StageSoaking, sluicev1beta1.PipelineReasonProgressing,
			fmt.Sprintf("Canary %s promoted %s; soaking", canaryName(x.p, spec), rec.Revision))
		x.soak(spec, st, o)
	case sluicev1beta1.DeliveryRolledBack, sluicev1beta1.DeliveryFailed:
		x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonVerificationFailed,
			fmt.Sprintf("Canary %s %s release %s of bundle %s (%s): the bundle goes no further",
				canaryName(x.p, spec), strings.ToLower(outcomeVerb(rec.Outcome)), rec.Revision, st.Bundle, rec.Cause))
	default: // Superseded, Cancelled: the release ended without a verdict on this bundle.
		x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonSuperseded,
			fmt.Sprintf("release %s of bundle %s ended %s before a verdict: the bundle goes no further", rec.Revision, st.Bundle, rec.Outcome))
	}
}

func outcomeVerb(o sluicev1beta1.DeliveryOutcome) string {
	if o == sluicev1beta1.DeliveryRolledBack {
		return "rolled back"
	}
	return "failed"
}

// soak verifies a promoted bundle once soakTime has passed with no other
// release started on the Canary meanwhile (and, with soakChecks: Metrics,
// with the last check of every metric passed).
func (x *decider) soak(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, o StageObservation) {
	c := o.Canary
	if c != nil && (releasedAfter(c, st.Commit) || adopted(st) && releasedSince(c, st)) {
		x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonSuperseded,
			fmt.Sprintf("another release started on Canary %s while bundle %s soaked: the bundle goes no further", canaryName(x.p, spec), st.Bundle))
		return
	}
	var soak time.Duration
	if spec.SoakTime != nil {
		soak = spec.SoakTime.Duration
	}
	promoted := x.now
	if st.PromotedAt != nil {
		promoted = st.PromotedAt.UTC()
	}
	end := promoted.Add(soak)
	metricsOK, failed, why := x.soakMetrics(spec, st, o)
	if failed {
		return
	}
	if x.now.Before(end) {
		st.Message = fmt.Sprintf("%s; soaking until %s", soakSubject(st), end.Format(time.RFC3339))
		if why != "" {
			st.Message += "; " + why
		}
		st.Message = truncate(st.Message, 1024)
		x.requeue(end)
		return
	}
	if !metricsOK {
		st.Reason = sluicev1beta1.PipelineReasonSoakChecksPending
		st.Message = truncate(fmt.Sprintf("%s soaked until %s, but %s: bundle %s is verified once every metric passes on the primary",
			soakSubject(st), end.Format(time.RFC3339), why, st.Bundle), 1024)
		return
	}
	reason, msg := verifiedReason(st, canaryName(x.p, spec))
	x.setState(st, sluicev1beta1.StageVerified, reason, msg)
}

// releaseOf is the newest delivery record of the release the commit started.
func releaseOf(c *sluicev1beta1.Canary, commit string) *sluicev1beta1.DeliveryRecord {
	if c.Status.Delivery == nil || commit == "" {
		return nil
	}
	rs := c.Status.Delivery.Releases
	for i := len(rs) - 1; i >= 0; i-- {
		if commitOf(rs[i].SourceRevision) == commit {
			return &rs[i]
		}
	}
	return nil
}

// releasedAfter tells whether the Canary recorded a release after the one
// the commit started.
func releasedAfter(c *sluicev1beta1.Canary, commit string) bool {
	if c.Status.Delivery == nil {
		return false
	}
	rs := c.Status.Delivery.Releases
	for i := len(rs) - 1; i >= 0; i-- {
		if commitOf(rs[i].SourceRevision) == commit {
			return i < len(rs)-1
		}
	}
	return false
}

// commitOf is the commit of a GitSync revision, <ref>@sha1:<commit>.
func commitOf(revision string) string {
	if i := strings.LastIndex(revision, ":"); i >= 0 && strings.Contains(revision, "@") {
		return revision[i+1:]
	}
	return revision
}

func canaryName(p *sluicev1beta1.Pipeline, s *sluicev1beta1.PipelineStage) string {
	ns := s.CanaryRef.Namespace
	if ns == "" {
		ns = p.Namespace
	}
	return ns + "/" + s.CanaryRef.Name
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func ptrTime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}
