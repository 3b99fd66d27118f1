package canary

import (
	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// recordSamples appends this step's values of the metrics compared with a
// statistical test to status.comparisonSamples, the samples their next
// checks test (pkg/metrics reads them back). The samples live in status,
// never in memory, so a restarted controller tests the same values. A step
// whose check has no value on either side (error, no data, initialDelay)
// adds no sample; each metric keeps its newest MaxComparisonSamples; metrics
// no longer tested (the spec changed) are dropped.
func (x *decider) recordSamples(checks []sluicev1beta1.CheckResult) {
	tested := map[string]bool{}
	if a := x.c.Spec.Analysis; a != nil {
		for _, m := range a.Metrics {
			if m.Compare != nil && m.Compare.Test == sluicev1beta1.CompareTestMannWhitney {
				tested[m.Name] = true
			}
		}
	}
	kept := x.st.ComparisonSamples[:0:0]
	index := map[string]int{}
	for _, s := range x.st.ComparisonSamples {
		if tested[s.Name] {
			index[s.Name] = len(kept)
			kept = append(kept, *s.DeepCopy())
		}
	}
	for _, c := range checks {
		if c.Kind != "metric" || !tested[c.Name] || c.Value == nil || c.ComparedValue == nil {
			continue
		}
		i, ok := index[c.Name]
		if !ok {
			i = len(kept)
			index[c.Name] = i
			kept = append(kept, sluicev1beta1.ComparisonSamples{Name: c.Name})
		}
		s := &kept[i]
		s.Canary = newest(append(s.Canary, *c.Value))
		s.Compared = newest(append(s.Compared, *c.ComparedValue))
	}
	if len(kept) == 0 {
		kept = nil
	}
	x.st.ComparisonSamples = kept
}

// newest keeps the last MaxComparisonSamples values.
func newest(v []string) []string {
	if n := len(v); n > sluicev1beta1.MaxComparisonSamples {
		return v[n-sluicev1beta1.MaxComparisonSamples:]
	}
	return v
}
