package compare

import (
	"math"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
)

func TestJudge_Tolerance(t *testing.T) {
	tests := []struct {
		name                  string
		canary, compared      float64
		dir                   Direction
		maxIncrease, maxDelta *float64
		wantPass              bool
		wantMessage           string
	}{
		{"equal error rates pass", 2, 2, HigherIsWorse, ptr.To(10.0), nil, true,
			"errors 2 vs primary 2: not worse"},
		{"error rate tripled fails by percent", 6, 2, HigherIsWorse, ptr.To(10.0), nil, false,
			"errors 6 vs primary 2: worse by 200%, maxIncrease 10%"},
		{"exactly the increase allowed passes", 2.2, 2, "", ptr.To(10.0), nil, true,
			"errors 2.2 vs primary 2: worse by 10%, maxIncrease 10%"},
		{"lower error rate passes", 1, 2, HigherIsWorse, ptr.To(0.0), nil, true,
			"errors 1 vs primary 2: not worse"},
		{"success rate lower by 4 points fails maxDelta 1", 94, 98, LowerIsWorse, nil, ptr.To(1.0), false,
			"errors 94 vs primary 98: worse by 4, maxDelta 1"},
		{"success rate lower by 0.5 points passes maxDelta 1", 97.5, 98, LowerIsWorse, nil, ptr.To(1.0), true,
			"errors 97.5 vs primary 98: worse by 0.5, maxDelta 1"},
		{"higher success rate passes", 99, 98, LowerIsWorse, nil, ptr.To(0.0), true,
			"errors 99 vs primary 98: not worse"},
		{"any increase over 0 fails a percentage", 0.1, 0, HigherIsWorse, ptr.To(50.0), nil, false,
			"errors 0.1 vs primary 0: worse by +Inf%, maxIncrease 50%"},
		{"0 vs 0 passes a percentage", 0, 0, HigherIsWorse, ptr.To(0.0), nil, true,
			"errors 0 vs primary 0: not worse"},
		{"maxDelta works at 0", 0.1, 0, HigherIsWorse, nil, ptr.To(0.5), true,
			"errors 0.1 vs primary 0: worse by 0.1, maxDelta 0.5"},
		{"negative values: percent of the magnitude", -1, -2, HigherIsWorse, ptr.To(40.0), nil, false,
			"errors -1 vs primary -2: worse by 50%, maxIncrease 40%"},
		{"infinite canary fails", math.Inf(1), 2, HigherIsWorse, ptr.To(10.0), nil, false,
			"errors +Inf vs primary 2: worse by +Inf%, maxIncrease 10%"},
		{"equal infinities pass", math.Inf(1), math.Inf(1), HigherIsWorse, nil, ptr.To(0.0), true,
			"errors +Inf vs primary +Inf: not worse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := Judge(Input{Name: "errors", Against: "primary", Canary: tt.canary, Compared: tt.compared,
				Direction: tt.dir, MaxIncrease: tt.maxIncrease, MaxDelta: tt.maxDelta})
			g.Expect(got.Pass).To(Equal(tt.wantPass), got.Message)
			g.Expect(got.Message).To(Equal(tt.wantMessage))
			g.Expect(got.Reason).To(BeEmpty())
			g.Expect(got.Test).To(BeNil())
		})
	}
}

// Without a test and without a tolerance (which the CRD forbids) nothing
// passes.
func TestJudge_NothingToCompareWithFails(t *testing.T) {
	g := NewWithT(t)
	got := Judge(Input{Name: "errors", Against: "baseline", Canary: 1, Compared: 1})
	g.Expect(got.Pass).To(BeFalse())
	g.Expect(got.Message).To(ContainSubstring("no maxIncrease or maxDelta"))
}

func TestJudge_MannWhitney(t *testing.T) {
	// The reference samples of TestMannWhitney_Reference: the canary's error
	// rates are higher with p = 0.0134 (one-sided).
	canary := []float64{2.1, 2.5, 2.5, 3.0, 3.2, 3.3, 3.8, 4.0}
	primary := []float64{1.9, 2.0, 2.1, 2.2, 2.4, 2.5, 2.6, 2.8}
	alike := []float64{2, 2.1, 1.9, 2, 2.2, 1.8, 2, 2.1}
	tests := []struct {
		name        string
		in          Input
		wantPass    bool
		wantReason  string
		wantP       float64 // -1: no test
		wantMessage string
	}{
		{"significantly higher fails", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary, ComparedSamples: primary,
			MinSamples: 8, PValue: 0.05}, false, "", 0.013428347753762213,
			"errors 4 vs primary 2.8: significantly higher (Mann-Whitney over 8 samples per side: U=53.5, p=0.0134 < 0.05)"},
		{"not significant at 0.01 passes", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary, ComparedSamples: primary,
			MinSamples: 8, PValue: 0.01}, true, "", 0.013428347753762213,
			"errors 4 vs primary 2.8: not significantly higher (Mann-Whitney over 8 samples per side: U=53.5, p=0.0134 >= 0.01)"},
		{"lower is worse: higher values are no evidence", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary, ComparedSamples: primary,
			Direction: LowerIsWorse, MinSamples: 8, PValue: 0.05}, true, "", 0.989802579908312,
			"errors 4 vs primary 2.8: not significantly lower (Mann-Whitney over 8 samples per side: U=53.5, p=0.99 >= 0.05)"},
		{"significant but within the tolerance passes", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary, ComparedSamples: primary,
			MaxDelta: ptr.To(2.0), MinSamples: 8, PValue: 0.05}, true, "", 0.013428347753762213,
			"errors 4 vs primary 2.8: significantly higher (Mann-Whitney over 8 samples per side: U=53.5, p=0.0134 < 0.05) but worse by 1.2, maxDelta 2"},
		{"significant and beyond the tolerance fails", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary, ComparedSamples: primary,
			MaxIncrease: ptr.To(10.0), MinSamples: 8, PValue: 0.05}, false, "", 0.013428347753762213,
			"errors 4 vs primary 2.8: significantly higher (Mann-Whitney over 8 samples per side: U=53.5, p=0.0134 < 0.05) and worse by 42.8571%, maxIncrease 10%"},
		{"alike samples pass", Input{Canary: 2.1, Compared: 2, CanarySamples: alike, ComparedSamples: alike,
			MinSamples: 8, PValue: 0.05}, true, "", -2,
			""},
		{"too few samples, no tolerance: passes as insufficient", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary[:5], ComparedSamples: primary[:5],
			MinSamples: 8, PValue: 0.05}, true, ReasonInsufficientSamples, -1,
			"errors 4 vs primary 2.8: not judged yet (Mann-Whitney after 8 samples, 5 so far)"},
		{"too few samples: the tolerance judges", Input{Canary: 4.0, Compared: 2.8, CanarySamples: canary[:7], ComparedSamples: primary,
			MaxIncrease: ptr.To(10.0), MinSamples: 8, PValue: 0.05}, false, "", -1,
			"errors 4 vs primary 2.8: worse by 42.8571%, maxIncrease 10% (Mann-Whitney after 8 samples, 7 so far)"},
		{"uneven sample counts: the latest n of each side are used", Input{Canary: 4.0, Compared: 2.8,
			CanarySamples: append([]float64{100, 100}, canary...), ComparedSamples: primary,
			MinSamples: 8, PValue: 0.05}, false, "", 0.013428347753762213, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := tt.in
			in.Name, in.Against, in.MannWhitney = "errors", "primary", true
			got := Judge(in)
			g.Expect(got.Pass).To(Equal(tt.wantPass), got.Message)
			g.Expect(got.Reason).To(Equal(tt.wantReason))
			switch {
			case tt.wantP == -1:
				g.Expect(got.Test).To(BeNil())
			case tt.wantP >= 0:
				g.Expect(got.Test).NotTo(BeNil())
				g.Expect(got.Test.P).To(BeNumerically("~", tt.wantP, 1e-12))
				g.Expect(got.Samples).To(Equal(8))
			default:
				g.Expect(got.Test).NotTo(BeNil())
			}
			if tt.wantMessage != "" {
				g.Expect(got.Message).To(Equal(tt.wantMessage))
			}
		})
	}
}

// FuzzJudge: any values and settings give a verdict with a message; no
// panic, and a comparison that ran the test reports a p-value in [0, 1].
func FuzzJudge(f *testing.F) {
	f.Add(2.0, 2.0, 10.0, 0.0, true, false, true, uint8(8), 0.05, []byte{1, 2, 3})
	f.Add(math.Inf(1), 0.0, 0.0, 1.0, false, true, false, uint8(1), 0.5, []byte{})
	f.Fuzz(func(t *testing.T, canary, compared, inc, delta float64, hasInc, lower, mw bool, minSamples uint8, p float64, seed []byte) {
		in := Input{Name: "m", Against: "baseline", Canary: canary, Compared: compared, MannWhitney: mw,
			MinSamples: int(minSamples), PValue: p}
		if hasInc {
			in.MaxIncrease = &inc
		} else {
			in.MaxDelta = &delta
		}
		if lower {
			in.Direction = LowerIsWorse
		}
		for i, b := range seed {
			v := float64(b) / 7
			if i%2 == 0 {
				in.CanarySamples = append(in.CanarySamples, v)
			} else {
				in.ComparedSamples = append(in.ComparedSamples, v)
			}
		}
		got := Judge(in)
		if got.Message == "" {
			t.Fatal("no message")
		}
		if got.Test != nil && !(got.Test.P >= 0 && got.Test.P <= 1) {
			t.Fatalf("p = %v", got.Test.P)
		}
	})
}
