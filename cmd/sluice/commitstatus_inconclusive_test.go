package main

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

// An inconclusive pause leaves the commit pending, and says why and what a
// person must do.
func TestCanaryCommitStatus_Inconclusive(t *testing.T) {
	g := NewWithT(t)
	c := &sluicev1beta1.Canary{Status: sluicev1beta1.CanaryStatus{CanaryWeight: 20}}
	v := "97"
	failed := []sluicev1beta1.CheckResult{{Name: "success", Kind: "metric", Outcome: sluicev1beta1.CheckInconclusive, Value: &v,
		Message: "success 97 is inconclusive: outside [99, +Inf] but within inconclusiveRange [95, +Inf]"}}
	state, desc, ok := canaryCommitStatus(c, canary.Event{Warning: true, Reason: "AnalysisInconclusive"}, failed)
	g.Expect(ok).To(BeTrue())
	g.Expect(state).To(Equal(commitstatus.Pending))
	g.Expect(desc).To(Equal("Paused at 20% canary weight for promote or abort: success Inconclusive (97): success 97 is inconclusive: outside [99, +Inf] but within inconclusiveRange [95, +Inf]"))
}
