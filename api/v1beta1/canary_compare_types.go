package v1beta1

import (
	"strconv"
	"strings"
)

// Compared sides of a metric (compare.against).
const (
	CompareAgainstBaseline = "baseline"
	CompareAgainstPrimary  = "primary"
)

// Directions of a compared metric (compare.direction).
const (
	DirectionHigherIsWorse = "HigherIsWorse"
	DirectionLowerIsWorse  = "LowerIsWorse"
)

// CompareTestMannWhitney is the Mann–Whitney U test (compare.test).
const CompareTestMannWhitney = "MannWhitney"

// Defaults and bounds of the statistical comparison.
const (
	// DefaultCompareMinSamples is compare.minSamples when unset: below about
	// 8 values per side the normal approximation of Mann–Whitney's U is not
	// to be trusted, so it is also the smallest value accepted.
	DefaultCompareMinSamples = 8
	// MaxComparisonSamples is how many steps' values status keeps per
	// compared metric (the newest), and the largest minSamples.
	MaxComparisonSamples = 30
	// DefaultComparePValue is compare.pValue when unset.
	DefaultComparePValue = 0.05
)

// CanaryMetricCompare compares a metric of the canary with the same metric
// of the baseline or the primary: the metric's query is rendered a second
// time with {{ target }} and {{ service }} naming the compared side
// (<target>-baseline and <service>-baseline, or <target>-primary and
// <service>-primary), and the canary fails when it is worse than allowed.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.maxIncrease) && has(self.maxDelta))",message="compare takes maxIncrease (relative, e.g. 10%) or maxDelta (absolute), not both"
// +kubebuilder:validation:XValidation:rule="has(self.test) || has(self.maxIncrease) || has(self.maxDelta)",message="compare needs maxIncrease (e.g. 10%) or maxDelta (an absolute difference), or test: MannWhitney"
// +kubebuilder:validation:XValidation:rule="has(self.test) || (!has(self.minSamples) && !has(self.pValue))",message="compare.minSamples and compare.pValue configure the statistical test: set test: MannWhitney or remove them"
type CanaryMetricCompare struct {
	// against is the side the canary is compared with: baseline (pods of
	// the primary's version receiving the canary's traffic share; needs
	// spec.analysis.baseline: true) or primary.
	// +kubebuilder:validation:Enum=baseline;primary
	// +required
	Against string `json:"against"`

	// maxIncrease is how much worse than the compared side the canary may
	// be, in percent of the compared value, e.g. 10%. A compared value of 0
	// tolerates no worsening at all: use maxDelta for metrics often at 0.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[0-9]{1,6}(\.[0-9]{1,6})?%$`
	// +optional
	MaxIncrease string `json:"maxIncrease,omitempty"`

	// maxDelta is how much worse than the compared side the canary may be,
	// in the metric's unit (e.g. 1 for one percentage point of success rate).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxDelta *float64 `json:"maxDelta,omitempty"`

	// direction is which way the metric gets worse: HigherIsWorse (error
	// rates, latencies) or LowerIsWorse (success rates). Defaults to
	// LowerIsWorse for the builtin request-success-rate, HigherIsWorse for
	// every other metric.
	// +kubebuilder:validation:Enum=HigherIsWorse;LowerIsWorse
	// +optional
	Direction string `json:"direction,omitempty"`

	// test adds a statistical test over the values of the release's steps:
	// MannWhitney (the one-sided Mann–Whitney U test, as Kayenta uses). Once
	// minSamples steps measured both sides, the canary fails when its values
	// are significantly worse (p-value below pValue) and, if maxIncrease or
	// maxDelta is set, this step's values are also beyond it. Before, the
	// metric is judged by maxIncrease or maxDelta if set, and otherwise
	// passes with the reason InsufficientSamples.
	// +kubebuilder:validation:Enum=MannWhitney
	// +optional
	Test string `json:"test,omitempty"`

	// minSamples is the number of steps measuring both sides before the
	// test runs: 8 (default) to 30.
	// +kubebuilder:validation:Minimum=8
	// +kubebuilder:validation:Maximum=30
	// +optional
	MinSamples int32 `json:"minSamples,omitempty"`

	// pValue is the significance level of the test: a one-sided p-value
	// below it is a significant worsening. Defaults to 0.05.
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 0.5",message="compare.pValue must be greater than 0 and at most 0.5, e.g. 0.05"
	// +optional
	PValue *float64 `json:"pValue,omitempty"`
}

// ComparisonSamples are the values of a compared metric with a statistical
// test, one per analysis step of the current release that measured both
// sides, oldest first. Progress of the test lives here, not in memory.
type ComparisonSamples struct {
	// name of the metric.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// canary are the canary's values.
	// +kubebuilder:validation:MaxItems=30
	// +kubebuilder:validation:items:MaxLength=32
	// +listType=atomic
	// +optional
	Canary []string `json:"canary,omitempty"`
	// compared are the compared side's values, one per canary value.
	// +kubebuilder:validation:MaxItems=30
	// +kubebuilder:validation:items:MaxLength=32
	// +listType=atomic
	// +optional
	Compared []string `json:"compared,omitempty"`
}

// DirectionFor is the direction of a compared metric: direction, or the
// default of the metric's name (request-success-rate gets worse as it falls).
func (in *CanaryMetricCompare) DirectionFor(metric string) string {
	switch {
	case in.Direction != "":
		return in.Direction
	case metric == MetricRequestSuccessRate:
		return DirectionLowerIsWorse
	}
	return DirectionHigherIsWorse
}

// MinSamplesOrDefault is the number of samples per side the test needs.
func (in *CanaryMetricCompare) MinSamplesOrDefault() int {
	if in.MinSamples > 0 {
		return int(min(in.MinSamples, MaxComparisonSamples))
	}
	return DefaultCompareMinSamples
}

// PValueOrDefault is the significance level of the test.
func (in *CanaryMetricCompare) PValueOrDefault() float64 {
	if in.PValue != nil && *in.PValue > 0 {
		return *in.PValue
	}
	return DefaultComparePValue
}

// MaxIncreasePercent is maxIncrease as a number ("10%" is 10); nil when
// unset or not a percentage (which the CRD's pattern refuses).
func (in *CanaryMetricCompare) MaxIncreasePercent() *float64 {
	s, ok := strings.CutSuffix(in.MaxIncrease, "%")
	if !ok {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// ComparedNames are the {{ target }} and {{ service }} of the compared side
// of a metric: the baseline's or the primary's workload and Service.
func (in *Canary) ComparedNames(against string) (target, service string) {
	apex, _, _ := in.ServiceNames()
	suffix := "-primary"
	if against == CompareAgainstBaseline {
		suffix = "-baseline"
	}
	return in.Spec.TargetRef.Name + suffix, apex + suffix
}
