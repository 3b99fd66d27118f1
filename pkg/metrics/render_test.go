package metrics

import (
	"math"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestRender_EveryFunction(t *testing.T) {
	g := NewWithT(t)
	out, err := Render(`{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }} {{ variables.direction }}`,
		Model{Name: "c", Namespace: "ns", Target: "podinfo", Service: "web", Ingress: "ing", Route: "rt", Interval: 90 * time.Second,
			Variables: map[string]string{"direction": "inbound"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("c ns podinfo web ing rt 1m30s inbound"))
}

func TestRender_Errors(t *testing.T) {
	g := NewWithT(t)
	_, err := Render(`{{ variables.missing }}`, Model{Variables: map[string]string{"other": "x"}})
	g.Expect(err).To(MatchError(ContainSubstring(`map has no entry for key "missing"`)))
	_, err = Render(`{{ variables.missing }}`, Model{})
	g.Expect(err).To(MatchError(ContainSubstring("missing")))
	_, err = Render(`{{ nope }}`, Model{})
	g.Expect(err).To(MatchError(ContainSubstring(`function "nope" not defined`)))
	_, err = Render(`{{ name `, Model{})
	g.Expect(err).To(MatchError(ContainSubstring("invalid query template")))
}

func TestPromDuration(t *testing.T) {
	g := NewWithT(t)
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 30 * time.Second: "30s", 90 * time.Second: "1m30s", 2 * time.Hour: "2h",
		1500 * time.Millisecond: "1500ms", 0: "1m",
	} {
		g.Expect(promDuration(d)).To(Equal(want), "%s", d)
	}
}

func TestBounds(t *testing.T) {
	g := NewWithT(t)
	inf := math.Inf(1)
	lo, hi := bounds(sluicev1beta1.CanaryMetric{ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}})
	g.Expect([]float64{lo, hi}).To(Equal([]float64{99, inf}))
	lo, hi = bounds(sluicev1beta1.CanaryMetric{ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(1.0), Max: ptr.To(5.0)}})
	g.Expect([]float64{lo, hi}).To(Equal([]float64{1, 5}))
	// Flagger's deprecated threshold: a minimum for the success rate, a maximum otherwise.
	lo, _ = bounds(sluicev1beta1.CanaryMetric{Name: "request-success-rate", Threshold: 99})
	g.Expect(lo).To(Equal(99.0))
	_, hi = bounds(sluicev1beta1.CanaryMetric{Name: "request-duration", Threshold: 500})
	g.Expect(hi).To(Equal(500.0))
}

func TestRedact(t *testing.T) {
	g := NewWithT(t)
	g.Expect(redact(`Get "http://x": token s3cr3t-token rejected`, []string{"s3cr3t-token", ""})).To(Equal(`Get "http://x": token *** rejected`))
}

func TestMultipleSeriesError(t *testing.T) {
	g := NewWithT(t)
	err := &MultipleSeriesError{Series: []string{`{a="1"}`, `{a="2"}`, `{a="3"}`, `{a="4"}`}}
	g.Expect(err.Error()).To(Equal(`the query returned 4 series ({a="1"}, {a="2"}, {a="3"} and 1 more): aggregate it to one, e.g. with sum()`))
}
