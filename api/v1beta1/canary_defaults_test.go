package v1beta1

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestCanary_Strategy(t *testing.T) {
	match := []HTTPMatchRequest{{Headers: map[string]StringMatch{"x-canary": {Exact: "insider"}}}}
	tests := []struct {
		name     string
		analysis *CanaryAnalysis
		provider string
		want     DeploymentStrategy
	}{
		{name: "stepWeight is a progressive canary", analysis: &CanaryAnalysis{StepWeight: 10}, provider: "istio", want: StrategyCanary},
		{name: "stepWeights is a progressive canary", analysis: &CanaryAnalysis{StepWeights: []int32{1, 5}}, provider: "istio", want: StrategyCanary},
		{name: "iterations is blue/green", analysis: &CanaryAnalysis{Iterations: 5}, provider: "istio", want: StrategyBlueGreen},
		{name: "iterations with mirror is blue/green", analysis: &CanaryAnalysis{Iterations: 5, Mirror: true}, provider: "istio", want: StrategyBlueGreen},
		{name: "iterations with match is A/B", analysis: &CanaryAnalysis{Iterations: 5, Match: match}, provider: "istio", want: StrategyABTesting},
		{name: "kubernetes provider forces blue/green", analysis: &CanaryAnalysis{StepWeight: 10}, provider: "kubernetes", want: StrategyBlueGreen},
		{name: "no analysis is a canary", analysis: nil, provider: "istio", want: StrategyCanary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &Canary{Spec: CanarySpec{Analysis: tt.analysis}}
			g.Expect(c.Strategy(tt.provider)).To(Equal(tt.want))
		})
	}
}

func TestCanary_Defaults(t *testing.T) {
	g := NewWithT(t)
	c := &Canary{Spec: CanarySpec{TargetRef: TargetReference{Name: "podinfo"}, Analysis: &CanaryAnalysis{StepWeight: 10}}}
	g.Expect(c.AnalysisInterval()).To(Equal(time.Minute))
	g.Expect(c.Threshold()).To(Equal(int32(1)))
	g.Expect(c.MaxWeight()).To(Equal(int32(100)))
	g.Expect(c.MirrorWeight()).To(Equal(int32(100)))
	g.Expect(c.PrimaryReadyThreshold()).To(Equal(int32(100)))
	g.Expect(c.CanaryReadyThreshold()).To(Equal(int32(100)))
	g.Expect(c.ProgressDeadline()).To(Equal(600 * time.Second))
	g.Expect(c.Iterations("istio")).To(Equal(int32(0)))
	g.Expect(c.Iterations("kubernetes")).To(Equal(int32(10)))
	g.Expect(c.PortName()).To(Equal("http"))
	g.Expect(c.SkipsAnalysis()).To(BeFalse())
	apex, primary, canary := c.ServiceNames()
	g.Expect([]string{apex, primary, canary}).To(Equal([]string{"podinfo", "podinfo-primary", "podinfo-canary"}))
	g.Expect(c.PrimaryName()).To(Equal("podinfo-primary"))
}

func TestCanary_SetValuesOverrideDefaults(t *testing.T) {
	g := NewWithT(t)
	c := &Canary{Spec: CanarySpec{
		TargetRef:               TargetReference{Name: "podinfo"},
		Service:                 CanaryService{Name: "web", PortName: "grpc"},
		ProgressDeadlineSeconds: ptr.To[int32](60),
		Analysis: &CanaryAnalysis{
			Interval:              &metav1.Duration{Duration: 15 * time.Second},
			Threshold:             3,
			StepWeights:           []int32{5, 20, 60},
			MaxWeight:             90, // ignored: the last rung of stepWeights wins
			MirrorWeight:          25,
			PrimaryReadyThreshold: ptr.To[int32](0),
			CanaryReadyThreshold:  ptr.To[int32](50),
		},
	}}
	g.Expect(c.AnalysisInterval()).To(Equal(15 * time.Second))
	g.Expect(c.Threshold()).To(Equal(int32(3)))
	g.Expect(c.MaxWeight()).To(Equal(int32(60)))
	g.Expect(c.MirrorWeight()).To(Equal(int32(25)))
	g.Expect(c.PrimaryReadyThreshold()).To(Equal(int32(0)))
	g.Expect(c.CanaryReadyThreshold()).To(Equal(int32(50)))
	g.Expect(c.ProgressDeadline()).To(Equal(time.Minute))
	g.Expect(c.PortName()).To(Equal("grpc"))
	apex, primary, canary := c.ServiceNames()
	g.Expect([]string{apex, primary, canary}).To(Equal([]string{"web", "web-primary", "web-canary"}))

	c.Spec.Analysis.StepWeights = nil
	g.Expect(c.MaxWeight()).To(Equal(int32(90)))
	c.Spec.Analysis = nil
	g.Expect(c.SkipsAnalysis()).To(BeTrue())
}

func TestCanaryWebhook_Defaults(t *testing.T) {
	g := NewWithT(t)
	w := CanaryWebhook{}
	g.Expect(w.TimeoutOrDefault()).To(Equal(10 * time.Second))
	g.Expect(w.TypeOrDefault()).To(Equal(WebhookRollout))
	w = CanaryWebhook{Timeout: "1m30s", Type: WebhookPreRollout}
	g.Expect(w.TimeoutOrDefault()).To(Equal(90 * time.Second))
	g.Expect(w.TypeOrDefault()).To(Equal(WebhookPreRollout))

	m := CanaryMetric{}
	g.Expect(m.IntervalOrDefault()).To(Equal(time.Minute))
	m.Interval = &metav1.Duration{Duration: 30 * time.Second}
	g.Expect(m.IntervalOrDefault()).To(Equal(30 * time.Second))
}
