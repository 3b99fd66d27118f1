// Package compare decides whether a canary's metric is worse than the same
// metric measured on the baseline or the primary: by a tolerance (the
// canary may be at most maxIncrease percent or maxDelta worse, in the
// metric's bad direction) and by a Mann–Whitney U test over the values of
// the release's steps. It is pure: the values come from pkg/metrics, the
// samples from the Canary's status.
package compare

import (
	"fmt"
	"math"
	"strconv"
)

// Direction says which way a metric gets worse.
type Direction string

// Directions, as spec.analysis.metrics[].compare.direction spells them.
const (
	// HigherIsWorse: error rates, latencies (the default).
	HigherIsWorse Direction = "HigherIsWorse"
	// LowerIsWorse: success rates, throughput.
	LowerIsWorse Direction = "LowerIsWorse"
)

// ReasonInsufficientSamples is the reason of a statistical comparison that
// passed because fewer than minSamples steps measured both sides, and no
// tolerance was set to judge it meanwhile.
const ReasonInsufficientSamples = "InsufficientSamples"

// Input is one comparison: this step's values of both sides, the samples of
// the release so far (including this step's), and the metric's settings.
type Input struct {
	// Name of the metric, and Against (baseline or primary), for messages.
	Name, Against string
	// Canary and Compared are this step's values.
	Canary, Compared float64
	// CanarySamples and ComparedSamples are the values of the release's
	// steps, this step's included; used only when MannWhitney is set.
	CanarySamples, ComparedSamples []float64
	// Direction is HigherIsWorse when empty.
	Direction Direction
	// MaxIncrease is the tolerated worsening in percent of the compared
	// value; MaxDelta the tolerated worsening in the metric's unit. At most
	// one is set; without MannWhitney, exactly one.
	MaxIncrease, MaxDelta *float64
	// MannWhitney runs the statistical test once each side has MinSamples
	// values; PValue is its significance level.
	MannWhitney bool
	MinSamples  int
	PValue      float64
}

// Result is a comparison's verdict.
type Result struct {
	// Pass is false when the canary is worse than tolerated.
	Pass bool
	// Reason is ReasonInsufficientSamples when the test could not run and
	// nothing else judged the metric; "" otherwise.
	Reason string
	// Message says what was compared and why it passed or failed.
	Message string
	// Test is the Mann–Whitney outcome when the test ran, nil otherwise.
	Test *MannWhitneyResult
	// Samples is the number of samples per side the test used.
	Samples int
}

// Judge decides a comparison.
//
//   - Without MannWhitney, the tolerance decides: the canary passes when it is
//     at most MaxIncrease percent (or MaxDelta) worse than the compared side.
//   - With MannWhitney and at least MinSamples values per side, the test
//     decides: the canary fails when its values are significantly worse
//     (one-sided p-value below PValue) and, if a tolerance is set, this
//     step's values also exceed it; a significant but tolerated difference
//     passes.
//   - With MannWhitney and fewer samples, the tolerance decides if one is
//     set; otherwise the metric passes with ReasonInsufficientSamples.
func Judge(in Input) Result {
	dir := in.Direction
	if dir == "" {
		dir = HigherIsWorse
	}
	values := fmt.Sprintf("%s %s vs %s %s", in.Name, format(in.Canary), in.Against, format(in.Compared))
	tolerance, hasTolerance := tolerate(in, dir)
	if !in.MannWhitney {
		if !hasTolerance {
			// The CRD requires a tolerance without a test: this is a bug, and
			// it never passes silently.
			return Result{Message: values + ": no maxIncrease or maxDelta to compare with"}
		}
		return Result{Pass: tolerance.pass, Message: values + ": " + tolerance.message}
	}
	n := min(len(in.CanarySamples), len(in.ComparedSamples))
	minSamples := max(in.MinSamples, 1)
	if n < minSamples {
		wait := fmt.Sprintf("Mann-Whitney after %d samples, %d so far", minSamples, n)
		if hasTolerance {
			return Result{Pass: tolerance.pass, Message: values + ": " + tolerance.message + " (" + wait + ")"}
		}
		return Result{Pass: true, Reason: ReasonInsufficientSamples, Message: values + ": not judged yet (" + wait + ")"}
	}
	// The most recent samples, as many on each side.
	x, y := in.CanarySamples[len(in.CanarySamples)-n:], in.ComparedSamples[len(in.ComparedSamples)-n:]
	alt := Greater
	if dir == LowerIsWorse {
		alt = Less
	}
	mw, err := MannWhitney(x, y, alt)
	if err != nil {
		return Result{Message: fmt.Sprintf("%s: cannot run Mann-Whitney: %v", values, err)}
	}
	worse := "higher"
	if dir == LowerIsWorse {
		worse = "lower"
	}
	test := fmt.Sprintf("Mann-Whitney over %d samples per side: U=%s, p=%s", n, format(mw.U), formatP(mw.P))
	res := Result{Test: &mw, Samples: n}
	switch {
	case !(mw.P < in.PValue):
		res.Pass = true
		res.Message = fmt.Sprintf("%s: not significantly %s (%s >= %s)", values, worse, test, formatP(in.PValue))
	case hasTolerance && tolerance.pass:
		res.Pass = true
		res.Message = fmt.Sprintf("%s: significantly %s (%s < %s) but %s", values, worse, test, formatP(in.PValue), tolerance.message)
	default:
		res.Message = fmt.Sprintf("%s: significantly %s (%s < %s)", values, worse, test, formatP(in.PValue))
		if hasTolerance {
			res.Message += " and " + tolerance.message
		}
	}
	return res
}

type verdict struct {
	pass    bool
	message string
}

// tolerate judges this step's values by MaxIncrease or MaxDelta; false when
// neither is set.
func tolerate(in Input, dir Direction) (verdict, bool) {
	worse := Worsening(in.Canary, in.Compared, dir)
	switch {
	case in.MaxDelta != nil:
		limit := *in.MaxDelta
		msg := fmt.Sprintf("worse by %s, maxDelta %s", format(worse), format(limit))
		if worse <= 0 {
			msg = "not worse"
		}
		return verdict{pass: !exceeds(worse, limit), message: msg}, true
	case in.MaxIncrease != nil:
		limit := *in.MaxIncrease
		pct := IncreasePercent(in.Canary, in.Compared, dir)
		msg := fmt.Sprintf("worse by %s%%, maxIncrease %s%%", format(pct), format(limit))
		if pct <= 0 {
			msg = "not worse"
		}
		return verdict{pass: !exceeds(pct, limit), message: msg}, true
	}
	return verdict{}, false
}

// Worsening is how much worse the canary is than the compared side, in the
// metric's unit: canary - compared when higher is worse, compared - canary
// when lower is worse; negative when the canary is better. Equal infinities
// are no worsening.
func Worsening(canary, compared float64, dir Direction) float64 {
	if canary == compared { // also +Inf == +Inf, whose difference is NaN
		return 0
	}
	if dir == LowerIsWorse {
		return compared - canary
	}
	return canary - compared
}

// IncreasePercent is the worsening in percent of the compared value's
// magnitude: 0 when the canary is not worse, +Inf when it is worse than a
// compared value of 0 (no percentage of 0 tolerates anything: use maxDelta
// for metrics that are often 0), 0 when the compared value is infinite.
func IncreasePercent(canary, compared float64, dir Direction) float64 {
	worse := Worsening(canary, compared, dir)
	switch {
	case !(worse > 0):
		return 0
	case compared == 0:
		return math.Inf(1)
	case math.IsInf(compared, 0) && !math.IsInf(worse, 0):
		return 0
	}
	pct := worse / math.Abs(compared) * 100
	if math.IsNaN(pct) { // Inf/Inf: the canary is infinitely worse than an infinite value
		return math.Inf(1)
	}
	return pct
}

// exceeds compares with the relative tolerance pkg/metrics uses for
// thresholds, so that a worsening computed as 10.000000000000002 meets a
// limit of 10, as its printed value says.
func exceeds(v, limit float64) bool {
	return v > limit+1e-9*math.Max(1, math.Abs(limit))
}

func format(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// formatP prints a p-value with 3 significant digits, enough to read it
// against a significance level.
func formatP(p float64) string {
	return strconv.FormatFloat(p, 'g', 3, 64)
}
