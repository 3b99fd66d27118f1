package canary

import (
	"strconv"
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// dcAnalysis is a progressive canary whose request-success-rate is compared
// against the primary with a Mann–Whitney test, and whose "errors" metric is
// compared by a tolerance only (it keeps no samples).
func dcAnalysis() *sluicev1beta1.CanaryAnalysis {
	a := dtProgressive()
	a.Metrics = []sluicev1beta1.CanaryMetric{
		{Name: "request-success-rate", Compare: &sluicev1beta1.CanaryMetricCompare{Against: "primary", Test: "MannWhitney"}},
		{Name: "errors", Query: "vector(1)", Compare: &sluicev1beta1.CanaryMetricCompare{Against: "primary", MaxIncrease: "10%"}},
	}
	return a
}

func dcCompared(name, value, compared string, outcome sluicev1beta1.CheckOutcome) sluicev1beta1.CheckResult {
	r := sluicev1beta1.CheckResult{Name: name, Kind: "metric", Outcome: outcome, ComparedAgainst: "primary"}
	if value != "" {
		r.Value = &value
	}
	if compared != "" {
		r.ComparedValue = &compared
	}
	return r
}

func dcSamples(name string, n int) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		cs := sluicev1beta1.ComparisonSamples{Name: name}
		for i := range n {
			cs.Canary = append(cs.Canary, strconv.Itoa(90+i%10))
			cs.Compared = append(cs.Compared, "98")
		}
		s.ComparisonSamples = append(s.ComparisonSamples, cs)
	}
}

// TestDecide_ComparisonSamples: a step records both values of each metric
// compared with a test in status.comparisonSamples, newest last, at most 30;
// a check without both values adds nothing; metrics without a test keep no
// samples; a sample of a metric no longer tested is dropped; a new release
// starts with none.
func TestDecide_ComparisonSamples(t *testing.T) {
	tests := []struct {
		name  string
		obs   Observation
		check func(g Gomega, d Decision)
	}{
		{
			name: "a passing step appends the tested metric's values",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10), dcSamples("request-success-rate", 2))),
				dtWithChecks(dtResults(dcCompared("request-success-rate", "97.5", "98", sluicev1beta1.CheckPassed),
					dcCompared("errors", "2", "2", sluicev1beta1.CheckPassed)))),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.CanaryWeight).To(BeEquivalentTo(20))
				g.Expect(d.Status.ComparisonSamples).To(Equal([]sluicev1beta1.ComparisonSamples{
					{Name: "request-success-rate", Canary: []string{"90", "91", "97.5"}, Compared: []string{"98", "98", "98"}},
				}))
			},
		},
		{
			name: "a failing step records its sample too",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10))),
				dtWithChecks(dtResults(dcCompared("request-success-rate", "90", "98", sluicev1beta1.CheckFailed)))),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.FailedChecks).To(BeEquivalentTo(1))
				g.Expect(d.Status.ComparisonSamples).To(Equal([]sluicev1beta1.ComparisonSamples{
					{Name: "request-success-rate", Canary: []string{"90"}, Compared: []string{"98"}},
				}))
			},
		},
		{
			name: "no data on the compared side adds no sample",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10), dcSamples("request-success-rate", 1))),
				dtWithChecks(dtResults(dcCompared("request-success-rate", "97", "", sluicev1beta1.CheckNoData)))),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ComparisonSamples[0].Canary).To(Equal([]string{"90"}))
				g.Expect(d.Status.ComparisonSamples[0].Compared).To(Equal([]string{"98"}))
			},
		},
		{
			name: "at most 30 samples, the newest",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10), dcSamples("request-success-rate", 30))),
				dtWithChecks(dtResults(dcCompared("request-success-rate", "99.5", "98.5", sluicev1beta1.CheckPassed)))),
			check: func(g Gomega, d Decision) {
				s := d.Status.ComparisonSamples[0]
				g.Expect(s.Canary).To(HaveLen(30))
				g.Expect(s.Compared).To(HaveLen(30))
				g.Expect(s.Canary[0]).To(Equal("91"), "the oldest went")
				g.Expect(s.Canary[29]).To(Equal("99.5"))
				g.Expect(s.Compared[29]).To(Equal("98.5"))
			},
		},
		{
			name: "samples of a metric no longer tested are dropped",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10), dcSamples("old-metric", 3))),
				dtWithChecks(dtResults(dcCompared("errors", "2", "2", sluicev1beta1.CheckPassed)))),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ComparisonSamples).To(BeNil())
			},
		},
		{
			name: "a new revision starts without samples",
			obs: dtObserve(dtCanary(dcAnalysis(), dtStatus(dtPhProgressing, dtWeight(10), dcSamples("request-success-rate", 5))),
				dtTargetHash(dtHashC)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ComparisonSamples).To(BeNil())
				g.Expect(d.Status.LastAppliedSpec).To(Equal(dtHashC))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			before := tt.obs.Canary.Status.DeepCopy()
			d := Decide(tt.obs)
			g.Expect(d.NeedChecks).To(BeNil())
			tt.check(g, d)
			g.Expect(tt.obs.Canary.Status).To(Equal(*before), "Decide must not change its input")
		})
	}
}
