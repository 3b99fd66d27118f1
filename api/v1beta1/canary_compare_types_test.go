package v1beta1

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestCanaryMetricCompare_Defaults(t *testing.T) {
	g := NewWithT(t)
	c := &CanaryMetricCompare{Against: CompareAgainstPrimary}
	g.Expect(c.DirectionFor(MetricRequestSuccessRate)).To(Equal(DirectionLowerIsWorse), "a success rate gets worse as it falls")
	g.Expect(c.DirectionFor(MetricRequestDuration)).To(Equal(DirectionHigherIsWorse))
	g.Expect(c.DirectionFor("error-rate")).To(Equal(DirectionHigherIsWorse))
	g.Expect(c.MinSamplesOrDefault()).To(Equal(8))
	g.Expect(c.PValueOrDefault()).To(Equal(0.05))
	g.Expect(c.MaxIncreasePercent()).To(BeNil())

	p := 0.01
	c = &CanaryMetricCompare{Direction: DirectionHigherIsWorse, MinSamples: 12, PValue: &p, MaxIncrease: "12.5%"}
	g.Expect(c.DirectionFor(MetricRequestSuccessRate)).To(Equal(DirectionHigherIsWorse), "an explicit direction wins")
	g.Expect(c.MinSamplesOrDefault()).To(Equal(12))
	g.Expect(c.PValueOrDefault()).To(Equal(0.01))
	g.Expect(*c.MaxIncreasePercent()).To(Equal(12.5))
	g.Expect((&CanaryMetricCompare{MinSamples: 99}).MinSamplesOrDefault()).To(Equal(MaxComparisonSamples), "bounded by the samples kept")
	g.Expect((&CanaryMetricCompare{MaxIncrease: "10"}).MaxIncreasePercent()).To(BeNil(), "not a percentage")
	g.Expect((&CanaryMetricCompare{MaxIncrease: "x%"}).MaxIncreasePercent()).To(BeNil())
}

func TestCanary_ComparedNames(t *testing.T) {
	g := NewWithT(t)
	c := &Canary{Spec: CanarySpec{TargetRef: TargetReference{Name: "podinfo"}}}
	target, service := c.ComparedNames(CompareAgainstPrimary)
	g.Expect([]string{target, service}).To(Equal([]string{"podinfo-primary", "podinfo-primary"}))
	c.Spec.Service.Name = "front"
	target, service = c.ComparedNames(CompareAgainstBaseline)
	g.Expect([]string{target, service}).To(Equal([]string{"podinfo-baseline", "front-baseline"}))
}
