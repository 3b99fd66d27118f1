package canary

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// stepRecorder is an Announcer with the StepAnnouncer capability.
type stepRecorder struct{ announced, steps []string }

func (s *stepRecorder) Announce(_ *sluicev1beta1.Canary, e Event, _ string, _ []sluicev1beta1.CheckResult) {
	s.announced = append(s.announced, e.Reason)
}

func (s *stepRecorder) AnnounceStep(_ *sluicev1beta1.Canary, e Event) {
	s.steps = append(s.steps, e.Reason)
}

// plainRecorder has no StepAnnouncer capability.
type plainRecorder struct{ announced []string }

func (p *plainRecorder) Announce(_ *sluicev1beta1.Canary, e Event, _ string, _ []sluicev1beta1.CheckResult) {
	p.announced = append(p.announced, e.Reason)
}

func TestAnnounceAll_StepsGoToStepAnnouncersOnly(t *testing.T) {
	g := NewWithT(t)
	events := []Event{
		{Reason: string(sluicev1beta1.CanaryPhaseProgressing)},
		{Reason: "WeightIncreased", Message: "Advance canary weight to 20%"},
		{Reason: "PromotionStep", Message: "Primary weight 50%"},
		{Reason: string(sluicev1beta1.CanaryPhaseSucceeded)},
	}
	s := &stepRecorder{}
	(&CanaryReconciler{Announcer: s}).announceAll(&sluicev1beta1.Canary{}, events, Observation{})
	g.Expect(s.announced).To(Equal([]string{"Progressing", "Succeeded"}))
	g.Expect(s.steps).To(Equal([]string{"WeightIncreased", "PromotionStep"}))

	p := &plainRecorder{}
	(&CanaryReconciler{Announcer: p}).announceAll(&sluicev1beta1.Canary{}, events, Observation{})
	g.Expect(p.announced).To(Equal([]string{"Progressing", "Succeeded"}))

	// No announcer at all.
	(&CanaryReconciler{}).announceAll(&sluicev1beta1.Canary{}, events, Observation{})
}
