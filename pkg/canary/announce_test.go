package canary

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestAnnounce(t *testing.T) {
	gate := sluicev1beta1.CanaryWebhook{Name: "gate", Type: "confirm-promotion", MuteAlert: true}
	load := sluicev1beta1.CanaryWebhook{Name: "load", Type: "rollout", MuteAlert: true}
	smoke := sluicev1beta1.CanaryWebhook{Name: "smoke", Type: "pre-rollout"}
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &sluicev1beta1.CanaryAnalysis{
		Webhooks: []sluicev1beta1.CanaryWebhook{gate, load, smoke}}}}
	failed := func(names ...string) *CheckResults {
		r := &CheckResults{}
		for _, n := range names {
			r.Checks = append(r.Checks, sluicev1beta1.CheckResult{Name: n, Kind: "webhook", Outcome: sluicev1beta1.CheckFailed})
		}
		return r
	}
	tests := []struct {
		name   string
		reason string
		res    *CheckResults
		want   string
		wantOK bool
	}{
		{name: "rollback of any cause", reason: "Failed", want: SeverityError, wantOK: true},
		{name: "success", reason: "Succeeded", want: SeverityInfo, wantOK: true},
		{name: "new revision", reason: "Progressing", want: SeverityInfo, wantOK: true},
		{name: "waiting for a slot or confirm-rollout", reason: "Waiting", want: SeverityInfo, wantOK: true},
		{name: "waiting for a muted confirm-promotion", reason: "WaitingPromotion", wantOK: false},
		{name: "a failed pre-rollout check", reason: "CheckFailed", res: failed("smoke"), want: SeverityWarn, wantOK: true},
		{name: "a failed muted webhook", reason: "CheckFailed", res: failed("load"), wantOK: false},
		{name: "muted and unmuted failures", reason: "CheckFailed", res: failed("load", "smoke"), want: SeverityWarn, wantOK: true},
		{name: "routes restored", reason: "RoutesRestored", want: SeverityWarn, wantOK: true},
		{name: "weight increased is not announced", reason: "WeightIncreased", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sev, ok := announce(c, Event{Reason: tt.reason}, tt.res)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(sev).To(Equal(tt.want))
		})
	}
}
