package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var weekdays = []sluicev1beta1.Weekday{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}

// Windows are wall-clock times in their zone: the same 09:00-16:00 window
// is 08:00-15:00 UTC in Paris winter time and 07:00-14:00 UTC in summer
// time, and the wait across a DST change is an hour shorter or longer.
func TestWindowsOpen(t *testing.T) {
	paris := []sluicev1beta1.PromotionWindow{{Start: "09:00", End: "16:00", TimeZone: "Europe/Paris"}}
	tests := []struct {
		name     string
		windows  []sluicev1beta1.PromotionWindow
		now      string
		wantOpen bool
		wantNext string
	}{
		{name: "no windows: always open", now: "2026-03-28T03:00:00Z", wantOpen: true},
		{name: "winter, before opening", windows: paris, now: "2026-03-28T07:30:00Z", wantNext: "2026-03-28T08:00:00Z"},
		{name: "winter, open", windows: paris, now: "2026-03-28T08:00:00Z", wantOpen: true},
		{name: "winter, closed at end", windows: paris, now: "2026-03-28T15:00:00Z", wantNext: "2026-03-29T07:00:00Z"},
		{name: "spring forward day: 07:30 UTC is 09:30 CEST, open", windows: paris, now: "2026-03-29T07:30:00Z", wantOpen: true},
		{name: "spring forward day: 14:30 UTC is 16:30 CEST, closed", windows: paris, now: "2026-03-29T14:30:00Z", wantNext: "2026-03-30T07:00:00Z"},
		{name: "fall back eve: next opening is 16h away, not 15h", windows: paris, now: "2026-10-24T16:00:00Z", wantNext: "2026-10-25T08:00:00Z"},
		{name: "fall back day: 07:30 UTC is 08:30 CET, closed", windows: paris, now: "2026-10-25T07:30:00Z", wantNext: "2026-10-25T08:00:00Z"},
		{name: "New York spring forward: 13:30 UTC is 09:30 EDT, open",
			windows: []sluicev1beta1.PromotionWindow{{Start: "09:00", End: "17:00", TimeZone: "America/New_York"}}, now: "2026-03-08T13:30:00Z", wantOpen: true},
		{name: "New York the day before: 13:30 UTC is 08:30 EST, closed",
			windows: []sluicev1beta1.PromotionWindow{{Start: "09:00", End: "17:00", TimeZone: "America/New_York"}}, now: "2026-03-07T13:30:00Z", wantNext: "2026-03-07T14:00:00Z"},
		{name: "weekdays only: Saturday waits for Monday",
			windows: []sluicev1beta1.PromotionWindow{{Days: weekdays, Start: "09:00", End: "16:00", TimeZone: "UTC"}}, now: "2026-06-06T10:00:00Z", wantNext: "2026-06-08T09:00:00Z"},
		{name: "weekdays only: Friday open",
			windows: []sluicev1beta1.PromotionWindow{{Days: weekdays, Start: "09:00", End: "16:00"}}, now: "2026-06-05T15:59:00Z", wantOpen: true},
		{name: "end 24:00 includes 23:59",
			windows: []sluicev1beta1.PromotionWindow{{Start: "22:00", End: "24:00"}}, now: "2026-06-05T23:59:30Z", wantOpen: true},
		{name: "two windows: the earliest next opening",
			windows: []sluicev1beta1.PromotionWindow{{Start: "20:00", End: "21:00"}, {Start: "12:00", End: "13:00", TimeZone: "Asia/Tokyo"}}, now: "2026-06-05T10:00:00Z", wantNext: "2026-06-05T20:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			open, next, err := windowsOpen(tt.windows, utc(tt.now))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(open).To(Equal(tt.wantOpen))
			if tt.wantNext != "" {
				g.Expect(next.UTC()).To(Equal(utc(tt.wantNext)))
			}
		})
	}
}

// A window inside the spring-forward gap (02:00-03:00 does not exist that
// night in Paris) never opens that day, and the next opening is always in
// the future, so a requeue never spins.
func TestWindowsOpen_DSTGap(t *testing.T) {
	g := NewWithT(t)
	ws := []sluicev1beta1.PromotionWindow{{Start: "02:00", End: "03:00", TimeZone: "Europe/Paris"}}
	now := utc("2026-03-28T23:00:00Z")
	for range 5 {
		open, next, err := windowsOpen(ws, now)
		g.Expect(err).NotTo(HaveOccurred())
		if open {
			g.Expect(now.In(time.UTC).Day()).NotTo(Equal(29), "no 02:xx wall-clock time exists in Paris on 2026-03-29")
			now = now.Add(time.Hour)
			continue
		}
		g.Expect(next).To(BeTemporally(">", now))
		now = next
	}
	open, _, _ := windowsOpen(ws, utc("2026-03-30T00:30:00Z"))
	g.Expect(open).To(BeTrue(), "02:30 CEST on the next day")
}

func TestWindowsOpen_Errors(t *testing.T) {
	g := NewWithT(t)
	_, _, err := windowsOpen([]sluicev1beta1.PromotionWindow{{Start: "09:00", End: "10:00", TimeZone: "Mars/Olympus_Mons"}}, t0)
	g.Expect(err).To(MatchError(ContainSubstring(`time zone "Mars/Olympus_Mons"`)))
	_, _, err = windowsOpen([]sluicev1beta1.PromotionWindow{{Start: "10:00", End: "09:00"}}, t0)
	g.Expect(err).To(MatchError(ContainSubstring("start before end")))
}

// Decide holds a bundle outside the window, says until when, wakes up at
// the opening (across a DST change) and writes then.
func TestDecide_OutsidePromotionWindow(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", window("Europe/Paris", "09:00", "16:00"))))
	w.now = utc("2026-03-28T15:30:00Z") // 16:30 CET, Saturday
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d := w.decide()
	g.Expect(d.Writes).To(BeEmpty())
	g.Expect(d.Waits).To(ConsistOf(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonOutsidePromotionWindow)))
	g.Expect(d.Waits[0].Message).To(ContainSubstring("2026-03-29T07:00:00Z"))
	g.Expect(d.RequeueAfter).To(Equal(15*time.Hour + 30*time.Minute))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonOutsidePromotionWindow))

	w.now = w.now.Add(d.RequeueAfter - time.Second)
	g.Expect(w.decide().Writes).To(BeEmpty())
	w.now = utc("2026-03-29T07:00:00Z")
	d = w.decide()
	g.Expect(d.Writes).To(ConsistOf(HaveField("Stage", "production")))
	g.Expect(w.status("production").Gate).To(BeNil())
}
