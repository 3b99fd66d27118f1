package promotion

import (
	"fmt"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// SoakChecks are the Canary's metrics checked on the primary during a soak
// (soakChecks: Metrics), as the controller observed them.
type SoakChecks struct {
	// At is when the checks ran; the next round is due an analysis interval later.
	At time.Time
	// Results are one per metric of the Canary, in its order; empty when
	// the Canary has no metrics.
	Results []sluicev1beta1.CheckResult
}

// maxSoakCheckMessage bounds the message of a check kept in the stage's
// status: eight stages of 64 metrics stay far below an object's size limit.
const maxSoakCheckMessage = 256

// soakMetrics records the observed checks in the stage and tells whether the
// metrics let the soak end: the last check of every metric Passed (or was
// Skipped by its noData policy). A Failed check fails the bundle (failed is
// true); an Error or NoData holds the soak, so an unreachable metrics server
// never verifies a bundle. why says what the soak waits for.
func (x *decider) soakMetrics(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, o StageObservation) (ok, failed bool, why string) {
	if spec.SoakChecks != sluicev1beta1.SoakChecksMetrics {
		return true, false, ""
	}
	if o.SoakChecks != nil {
		st.SoakChecks = boundSoakChecks(o.SoakChecks.Results)
		st.LastSoakCheck = ptrTime(o.SoakChecks.At.UTC().Truncate(time.Second))
	}
	for _, r := range st.SoakChecks {
		if r.Outcome == sluicev1beta1.CheckFailed {
			x.setState(st, sluicev1beta1.StageFailed, sluicev1beta1.PipelineReasonSoakFailed,
				fmt.Sprintf("metric %s failed on the primary of Canary %s while bundle %s soaked: %s: the bundle goes no further",
					r.Name, canaryName(x.p, spec), st.Bundle, r.Message))
			return false, true, ""
		}
	}
	interval := sluicev1beta1.DefaultAnalysisInterval
	if o.Canary != nil {
		interval = o.Canary.AnalysisInterval()
	}
	if st.LastSoakCheck == nil {
		x.requeue(x.now)
		return false, false, "its metrics are not checked yet"
	}
	x.requeue(st.LastSoakCheck.UTC().Add(interval))
	var pending []string
	for _, r := range st.SoakChecks {
		if r.Outcome != sluicev1beta1.CheckPassed && r.Outcome != sluicev1beta1.CheckSkipped {
			pending = append(pending, fmt.Sprintf("%s is %s (%s)", r.Name, r.Outcome, r.Message))
		}
	}
	if len(pending) > 0 {
		return false, false, "the last check of " + strings.Join(pending, "; ")
	}
	return true, false, ""
}

// boundSoakChecks keeps what people need of each check: no query (the
// Canary's status has it) and a short message.
func boundSoakChecks(rs []sluicev1beta1.CheckResult) []sluicev1beta1.CheckResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]sluicev1beta1.CheckResult, 0, min(len(rs), sluicev1beta1.PipelineSoakChecksLimit))
	for _, r := range rs[:min(len(rs), sluicev1beta1.PipelineSoakChecksLimit)] {
		r.Query = ""
		r.Message = truncate(r.Message, maxSoakCheckMessage)
		if r.Value != nil {
			v := truncate(*r.Value, 64)
			r.Value = &v
		}
		out = append(out, r)
	}
	return out
}
