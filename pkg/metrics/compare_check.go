package metrics

import (
	"context"
	"math"
	"strconv"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics/compare"
)

// Compared metrics (issue 19 §4): the metric's query runs twice, once as
// for any metric and once with {{ target }} and {{ service }} naming the
// baseline or the primary, and pkg/metrics/compare judges the two values
// (and, with a statistical test, the values of the release's steps kept in
// status.comparisonSamples).

// QueriesOf is the number of queries a metric's check runs at once: two for
// a compared metric, one otherwise. The engine counts them against its
// concurrency bound.
func QueriesOf(m sluicev1beta1.CanaryMetric) int {
	if m.Compare != nil {
		return 2
	}
	return 1
}

// checkCompared runs both sides of a compared metric concurrently, so that
// the check costs the slower query, not the sum. Either side without a value
// ends the check as that side's error or missing data would end any check:
// a comparison never passes with one side unmeasured (unless the metric's
// noData policy says Pass).
func (k *Checker) checkCompared(ctx context.Context, c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric, t target, model Model,
	res sluicev1beta1.CheckResult) sluicev1beta1.CheckResult {
	cmp := m.Compare
	other := model
	other.Target, other.Service = c.ComparedNames(cmp.Against)
	// The Traefik and Gateway API builtins name the canary's Service as
	// {{ service }}-canary-; on the compared side {{ service }} is that
	// side's Service itself (SideQuery).
	otherT := t
	otherT.query = SideQuery(t.query)
	var theirs measurement
	done := make(chan struct{})
	go func() {
		defer close(done)
		theirs = k.measure(ctx, otherT, other, m)
	}()
	ours := k.measure(ctx, t, model, m)
	<-done

	res.Query, res.ComparedAgainst = ours.query, cmp.Against
	if out, done := settle(res, m, ours, ""); done {
		return out
	}
	v := formatValue(ours.value)
	res.Value = &v
	if out, done := settle(res, m, theirs, cmp.Against+": "); done {
		return out
	}
	cv := formatValue(theirs.value)
	res.ComparedValue = &cv

	// A thresholdRange is an absolute guard the canary must meet as well.
	guard := ""
	if lo, hi := bounds(m); !isUnbounded(lo, hi) {
		outcome, msg := judge(m, ours.value)
		if outcome != sluicev1beta1.CheckPassed {
			res.Outcome, res.Message = outcome, msg
			return res
		}
		guard = "; " + msg
	}

	// The values judged are the recorded ones (6 significant digits), so
	// that the test run from status.comparisonSamples gives the same answer.
	canaryNow, comparedNow := recorded(v, ours.value), recorded(cv, theirs.value)
	in := compare.Input{Name: m.Name, Against: cmp.Against, Canary: canaryNow, Compared: comparedNow,
		Direction: compare.Direction(cmp.DirectionFor(m.Name)), MaxIncrease: cmp.MaxIncreasePercent(), MaxDelta: cmp.MaxDelta}
	if cmp.Test == sluicev1beta1.CompareTestMannWhitney {
		in.MannWhitney, in.MinSamples, in.PValue = true, cmp.MinSamplesOrDefault(), cmp.PValueOrDefault()
		in.CanarySamples, in.ComparedSamples = SamplesOf(c, m.Name)
		in.CanarySamples = newest(append(in.CanarySamples, canaryNow))
		in.ComparedSamples = newest(append(in.ComparedSamples, comparedNow))
	}
	verdict := compare.Judge(in)
	res.Outcome, res.Reason, res.Message = sluicev1beta1.CheckFailed, verdict.Reason, truncate(verdict.Message+guard, 1024)
	if verdict.Pass {
		res.Outcome = sluicev1beta1.CheckPassed
	}
	if verdict.Test != nil {
		p := strconv.FormatFloat(verdict.Test.P, 'g', 4, 64)
		res.PValue = &p
	}
	return res
}

// SamplesOf are the values of a compared metric recorded in status at the
// release's previous steps, as many on each side, oldest first. A value
// that does not parse (never written by Sluice) is left out with its pair.
func SamplesOf(c *sluicev1beta1.Canary, name string) (canary, compared []float64) {
	for _, s := range c.Status.ComparisonSamples {
		if s.Name != name {
			continue
		}
		n := min(len(s.Canary), len(s.Compared))
		for i := range n {
			a, errA := strconv.ParseFloat(s.Canary[i], 64)
			b, errB := strconv.ParseFloat(s.Compared[i], 64)
			if errA != nil || errB != nil {
				continue
			}
			canary, compared = append(canary, a), append(compared, b)
		}
	}
	return canary, compared
}

// newest keeps the last MaxComparisonSamples values: those the engine will
// have kept in status once this step is recorded.
func newest(v []float64) []float64 {
	if n := len(v); n > sluicev1beta1.MaxComparisonSamples {
		return v[n-sluicev1beta1.MaxComparisonSamples:]
	}
	return v
}

func isUnbounded(lo, hi float64) bool {
	return math.IsInf(lo, -1) && math.IsInf(hi, 1)
}

// recorded is a value as status records it: formatValue's text read back
// (strconv reads its +Inf and -Inf), or the value itself should it not parse.
func recorded(text string, value float64) float64 {
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return f
	}
	return value
}
