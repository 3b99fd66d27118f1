package promotion

import (
	"fmt"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A write that finds the bundle already in the stage's branch commits
// nothing: the workload does not change, so the Canary starts no release
// and no verdict on the bundle will ever come. Waiting for one would hold
// the stage, and every stage after it, forever. Instead the stage adopts
// what runs: once its Canary is idle and its last release (if any)
// succeeded, the primary runs what the branch holds, and the bundle is
// verified there with the reason Adopted (after soakTime, counted from the
// adoption, and the soak checks). The marker of such a stage is its reason,
// AlreadyInBranch, while it is Committed; a release of exactly the recorded
// commit, when the Canary has one, verifies the bundle as any other.

// RecordAlreadyInBranch records that a direct write found the stage's
// branch already holding the pending bundle at sha (its head): nothing was
// committed and no release will start from it.
func (d *Decision) RecordAlreadyInBranch(stage, sha string) {
	st := d.stage(stage)
	if st == nil || st.State != sluicev1beta1.StagePending {
		return
	}
	st.Commit, st.PullRequest, st.State = sha, "", sluicev1beta1.StageCommitted
	st.LastTransitionTime = ptrTime(d.now)
	st.Reason = sluicev1beta1.PipelineReasonAlreadyInBranch
	st.Message = truncate(alreadyInBranch(st, "the stage adopts it once its Canary is idle and its last release succeeded"), 1024)
	d.setWriteFailure(stage, Reason{})
	d.Events = append(d.Events, Event{Reason: Reason{Reason: st.Reason, Message: st.Name + ": " + st.Message}})
	d.setConditions()
}

func alreadyInBranch(st *sluicev1beta1.PipelineStageStatus, then string) string {
	return fmt.Sprintf("the branch already held bundle %s at commit %s: nothing was committed and no release will verify it here; %s",
		st.Bundle, short(st.Commit), then)
}

// adopting decides a Committed stage whose write found its bundle already
// in the branch; it tells whether it did (false: the stage follows a
// release as any other).
func (x *decider) adopting(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, o StageObservation) bool {
	if st.State != sluicev1beta1.StageCommitted || st.Reason != sluicev1beta1.PipelineReasonAlreadyInBranch {
		return false
	}
	c := o.Canary
	if c != nil && (releaseOf(c, st.Commit) != nil || (c.Status.Source != nil && commitOf(c.Status.Source.Revision) == st.Commit)) {
		// The Canary released exactly this commit (it was pushed before
		// the write, or by a write whose status was lost): its verdict counts.
		return false
	}
	name := canaryName(x.p, spec)
	if c == nil {
		st.Message = truncate(alreadyInBranch(st, fmt.Sprintf("waiting for Canary %s, not found, to adopt it", name)), 1024)
		x.problem(sluicev1beta1.PipelineReasonCanaryNotFound, st.Name+": "+st.Message)
		return true
	}
	if why, failed := notIdle(c, name); why != "" {
		st.Message = truncate(alreadyInBranch(st, why), 1024)
		if failed {
			// Only a new release ends this wait: say so as a problem, not
			// as progress.
			x.problem(sluicev1beta1.PipelineReasonAlreadyInBranch, st.Name+": "+st.Message)
		}
		return true
	}
	st.Release, st.PromotedAt = "", ptrTime(x.now)
	st.SoakChecks, st.LastSoakCheck = nil, nil
	x.setState(st, sluicev1beta1.StageSoaking, sluicev1beta1.PipelineReasonAdopted,
		fmt.Sprintf("bundle %s adopted: the branch already held it at commit %s and Canary %s is idle; soaking", st.Bundle, short(st.Commit), name))
	x.soak(spec, st, o)
	return true
}

// notIdle says why a Canary's primary may not run what its branch holds:
// a release on its way, or a last release that did not succeed (its
// primary runs the revision before). failed is true for the latter.
func notIdle(c *sluicev1beta1.Canary, name string) (why string, failed bool) {
	if c.Status.Delivery != nil && len(c.Status.Delivery.Releases) > 0 {
		last := c.Status.Delivery.Releases[len(c.Status.Delivery.Releases)-1]
		switch last.Outcome {
		case sluicev1beta1.DeliveryRunning:
			return fmt.Sprintf("Canary %s is releasing %s: waiting for that release to end before adopting the bundle", name, last.Revision), false
		case sluicev1beta1.DeliveryRolledBack, sluicev1beta1.DeliveryFailed:
			return fmt.Sprintf("Canary %s %s its last release %s (%s), so its primary may not run what the branch holds: waiting for a release of Canary %s to succeed before adopting the bundle",
				name, outcomeVerb(last.Outcome), last.Revision, last.Cause, name), true
		}
	}
	switch c.Status.Phase {
	case sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded:
		return "", false
	case sluicev1beta1.CanaryPhaseFailed:
		return fmt.Sprintf("Canary %s is Failed, so its primary may not run what the branch holds: waiting for a release of Canary %s to succeed before adopting the bundle", name, name), true
	case "":
		return fmt.Sprintf("Canary %s has not reported a phase yet: waiting for it to be Initialized or Succeeded before adopting the bundle", name), false
	}
	return fmt.Sprintf("Canary %s is %s: waiting for it to be Initialized or Succeeded before adopting the bundle", name, c.Status.Phase), false
}

// adopted tells whether the stage's bundle was adopted rather than
// verified by a release: no release is recorded for it.
func adopted(st *sluicev1beta1.PipelineStageStatus) bool {
	return st.Release == "" && st.Commit != ""
}

// releasedSince tells whether the Canary started a release after t: during
// the soak of an adopted bundle that is another revision than the adopted one.
func releasedSince(c *sluicev1beta1.Canary, t *sluicev1beta1.PipelineStageStatus) bool {
	if c.Status.Delivery == nil || t.PromotedAt == nil {
		return false
	}
	for _, r := range c.Status.Delivery.Releases {
		if r.StartTime.After(t.PromotedAt.Time) {
			return true
		}
	}
	return false
}

// soakSubject names what soaks: a promoted release or an adopted bundle.
func soakSubject(st *sluicev1beta1.PipelineStageStatus) string {
	if adopted(st) {
		return "bundle " + st.Bundle + " adopted"
	}
	return "release " + st.Release + " promoted"
}

// verifiedReason is the reason and message of a bundle verified at the end of its soak.
func verifiedReason(st *sluicev1beta1.PipelineStageStatus, name string) (string, string) {
	if adopted(st) {
		return sluicev1beta1.PipelineReasonAdopted, fmt.Sprintf(
			"bundle %s adopted: the branch already held it at commit %s, so no release verified it here; Canary %s was idle and its last release, if any, had succeeded",
			st.Bundle, short(st.Commit), name)
	}
	return sluicev1beta1.PipelineReasonSucceeded, fmt.Sprintf("bundle %s verified by Canary %s release %s", st.Bundle, name, st.Release)
}
