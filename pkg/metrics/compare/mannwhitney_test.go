package compare

import (
	"math"
	"testing"

	. "github.com/onsi/gomega"
)

// The reference values below are computed by hand from the formulas of
// MannWhitney's documentation (those of scipy.stats.mannwhitneyu with
// method="asymptotic", use_continuity=True); the intermediate values are in
// each case's comment so that a reviewer can redo them with a calculator.
func TestMannWhitney_Reference(t *testing.T) {
	canary := []float64{2.1, 2.5, 2.5, 3.0, 3.2, 3.3, 3.8, 4.0}
	primary := []float64{1.9, 2.0, 2.1, 2.2, 2.4, 2.5, 2.6, 2.8}
	tests := []struct {
		name    string
		x, y    []float64
		alt     Alternative
		u, z, p float64
	}{
		// scipy's documentation example (males vs females, no ties):
		// ranks of x 3,5,7,8,9 -> R1 = 32, U1 = 32 - 15 = 17, U2 = 20 - 17 = 3;
		// mu = 10, sigma^2 = 20/12 * 10 = 16.667; z = (17 - 10 - 0.5)/4.0825 = 1.59217;
		// p = 2 * P(Z >= 1.59217) = 0.111347. scipy prints 0.11134688653314041.
		{"scipy example, two-sided", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, TwoSided,
			17, 1.5921683328090657, 0.11134688653314041},
		// Error rates with ties, 8 per side. Sorted with ranks (c = canary):
		// 1.9:1 2.0:2 2.1,2.1c:3.5 2.2:5 2.4:6 2.5,2.5c,2.5c:8 2.6:10 2.8:11
		// 3.0c:12 3.2c:13 3.3c:14 3.8c:15 4.0c:16.
		// R1 = 3.5+8+8+12+13+14+15+16 = 89.5, U1 = 89.5 - 36 = 53.5, U2 = 10.5.
		// Ties: one pair (2^3-2 = 6) and one triple (3^3-3 = 24): 30.
		// sigma^2 = 64/12 * (17 - 30/(16*15)) = 5.3333 * 16.875 = 90.
		// Greater: z = (53.5 - 32 - 0.5)/sqrt(90) = 21/9.48683 = 2.21359,
		// p = P(Z >= 2.21359) = 0.0134283.
		{"ties, greater", canary, primary, Greater, 53.5, 2.2135943621178655, 0.013428347753762213},
		// Two-sided: U = max(U1, U2) = 53.5, same z, p = 2 * 0.0134283.
		{"ties, two-sided", canary, primary, TwoSided, 53.5, 2.2135943621178655, 0.026856695507524425},
		// Less: U = U2 = 10.5, z = (10.5 - 32 - 0.5)/9.48683 = -2.31900,
		// p = P(Z >= -2.319) = 0.989803.
		{"ties, less", canary, primary, Less, 53.5, -2.3190036174568114, 0.989802579908312},
		// Success rates, canary all below the primary (lower is worse):
		// R1 = 1+...+8 = 36, U1 = 0, U2 = 64. Ties: 94.0 x2, 94.1 x2 (6 each),
		// 98.0 x3 (24), 98.1 x2 (6): 42. sigma^2 = 64/12 * (17 - 42/240) = 89.7333.
		// Less: z = (64 - 32 - 0.5)/9.47277 = 3.32532, p = 0.000441583.
		{"success rates, less", []float64{94.1, 93.8, 94.3, 94.0, 93.9, 94.2, 94.0, 94.1},
			[]float64{98.0, 97.9, 98.1, 98.0, 98.2, 97.8, 98.0, 98.1}, Less, 0, 3.325321600150568, 0.00044158299742634593},
		// Same distribution, many ties: R1 = 70.5, U1 = 34.5, ties 378,
		// sigma^2 = 64/12 * (17 - 378/240) = 82.2667, z = (34.5-32-0.5)/9.07010 = 0.220505, p = 0.412739.
		{"alike, greater", []float64{2, 2.1, 1.9, 2, 2.2, 1.8, 2, 2.1}, []float64{2, 1.9, 2.1, 2, 2, 2.2, 1.8, 2}, Greater,
			34.5, 0.220504798787901, 0.4127390177294087},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := MannWhitney(tt.x, tt.y, tt.alt)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.U).To(Equal(tt.u))
			g.Expect(got.Z).To(BeNumerically("~", tt.z, 1e-12))
			g.Expect(got.P).To(BeNumerically("~", tt.p, 1e-12))
		})
	}
}

// When every value is the same there is no evidence: z = 0, p = 1, for
// every alternative, and U is still U1 = n1 n2 / 2.
func TestMannWhitney_AllTied(t *testing.T) {
	g := NewWithT(t)
	x := []float64{2, 2, 2, 2, 2, 2, 2, 2}
	for _, alt := range []Alternative{TwoSided, Greater, Less} {
		got, err := MannWhitney(x, x, alt)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(MannWhitneyResult{U: 32, Z: 0, P: 1}))
	}
}

// The order of the values does not matter, and swapping the samples swaps
// the one-sided alternatives: U becomes n1 n2 - U, the p-values agree.
func TestMannWhitney_Symmetry(t *testing.T) {
	g := NewWithT(t)
	x := []float64{3.2, 2.1, 4.0, 2.5, 3.8, 2.5, 3.0, 3.3}
	y := []float64{2.8, 1.9, 2.6, 2.0, 2.5, 2.1, 2.4, 2.2}
	a, err := MannWhitney(x, y, Greater)
	g.Expect(err).NotTo(HaveOccurred())
	b, err := MannWhitney(y, x, Less)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.U).To(Equal(64 - a.U))
	g.Expect(b.P).To(BeNumerically("~", a.P, 1e-15))
}

// Infinite values rank like any other; an empty side or a NaN is refused.
func TestMannWhitney_Invalid(t *testing.T) {
	g := NewWithT(t)
	_, err := MannWhitney(nil, []float64{1}, Greater)
	g.Expect(err).To(MatchError(ErrSamples))
	_, err = MannWhitney([]float64{1, math.NaN()}, []float64{1}, Greater)
	g.Expect(err).To(MatchError(ErrSamples))
	got, err := MannWhitney([]float64{math.Inf(1), math.Inf(1)}, []float64{1, 2}, Greater)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.U).To(Equal(4.0))
}

// FuzzMannWhitney: for any finite or infinite values the test returns a
// p-value in [0, 1], a finite z and U1 + U2 = n1 n2; it never panics.
func FuzzMannWhitney(f *testing.F) {
	f.Add(2.1, 2.5, 3.0, 1.9, 2.0, 2.1, uint8(3), uint8(0))
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, uint8(1), uint8(1))
	f.Add(math.Inf(1), math.Inf(-1), 1.0, 1e308, -1e308, 5e-324, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, h float64, split, alt uint8) {
		vals := []float64{a, b, c, d, e, h}
		for _, v := range vals {
			if math.IsNaN(v) {
				return // refused: see TestMannWhitney_Invalid
			}
		}
		k := 1 + int(split)%5 // 1..5 values in x, the rest in y
		x, y := vals[:k], vals[k:]
		got, err := MannWhitney(x, y, Alternative(alt%3))
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if !(got.P >= 0 && got.P <= 1) || math.IsNaN(got.Z) || math.IsInf(got.Z, 0) {
			t.Fatalf("p=%v z=%v for %v vs %v", got.P, got.Z, x, y)
		}
		if u2 := float64(len(x)*len(y)) - got.U; got.U < 0 || u2 < 0 {
			t.Fatalf("U=%v out of [0, %d]", got.U, len(x)*len(y))
		}
	})
}
