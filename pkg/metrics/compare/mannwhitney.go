package compare

import (
	"errors"
	"math"
	"sort"
)

// Alternative is the hypothesis a Mann–Whitney test looks for evidence of.
type Alternative int

// Alternatives, named after what they say of the first sample x against
// the second y (scipy.stats.mannwhitneyu's alternative argument).
const (
	// TwoSided: x and y come from different distributions.
	TwoSided Alternative = iota
	// Greater: x tends to be larger than y.
	Greater
	// Less: x tends to be smaller than y.
	Less
)

// MannWhitneyResult is the outcome of a Mann–Whitney U test.
type MannWhitneyResult struct {
	// U is the statistic of the first sample, U1 = R1 - n1(n1+1)/2 where R1
	// is the sum of its ranks (scipy reports the same U1 whatever the
	// alternative).
	U float64
	// Z is the standardised statistic of the alternative's U, with the
	// continuity correction; 0 when every value is tied.
	Z float64
	// P is the p-value of the alternative, in [0, 1].
	P float64
}

// ErrSamples is returned for samples a test cannot use: an empty one, or a
// NaN value (which has no rank).
var ErrSamples = errors.New("invalid samples")

// MannWhitney runs the Mann–Whitney U test of x against y with the normal
// approximation, the tie correction of the variance and the continuity
// correction: the "asymptotic" method of scipy.stats.mannwhitneyu with
// use_continuity=True, which it gives the same U and p-value as.
//
// With N = n1 + n2, ties t_k (the sizes of the groups of equal values):
//
//	U1 = R1 - n1(n1+1)/2, U2 = n1 n2 - U1
//	mu = n1 n2 / 2
//	sigma^2 = n1 n2 / 12 * ((N + 1) - sum(t_k^3 - t_k) / (N (N - 1)))
//	z = (U - mu - 1/2) / sigma, with U = U1 (Greater), U2 (Less), max(U1, U2) (TwoSided)
//	p = P(Z >= z) for a one-sided test, 2 P(Z >= z) (capped at 1) two-sided
//
// The approximation needs about 8 values on each side to be trusted; this
// function computes it for any size and leaves that bound to its callers
// (Judge refuses to run the test below the metric's minSamples, at least 8).
// When every value is tied (sigma = 0) there is no evidence either way: z = 0
// and p = 1.
func MannWhitney(x, y []float64, alt Alternative) (MannWhitneyResult, error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{}, errors.Join(ErrSamples, errors.New("each side needs at least one value"))
	}
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	for _, o := range all {
		if math.IsNaN(o.v) {
			return MannWhitneyResult{}, errors.Join(ErrSamples, errors.New("a value is NaN"))
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })

	// Average ranks (1-based) over each group of ties, and the tie term.
	var r1, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+1+j) / 2 // mean of ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	f1, f2, n := float64(n1), float64(n2), float64(n1+n2)
	u1 := r1 - f1*(f1+1)/2
	u2 := f1*f2 - u1
	res := MannWhitneyResult{U: u1, P: 1}

	variance := f1 * f2 / 12 * (n + 1)
	if n > 1 {
		variance = f1 * f2 / 12 * ((n + 1) - ties/(n*(n-1)))
	}
	if !(variance > 0) {
		return res, nil
	}
	u, factor := u1, 1.0
	switch alt {
	case Less:
		u = u2
	case TwoSided:
		u, factor = math.Max(u1, u2), 2
	}
	res.Z = (u - f1*f2/2 - 0.5) / math.Sqrt(variance)
	res.P = math.Min(1, factor*normalSF(res.Z))
	return res, nil
}

// normalSF is the survival function of the standard normal distribution,
// P(Z >= z), computed with erfc so that small p-values keep their precision.
func normalSF(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
