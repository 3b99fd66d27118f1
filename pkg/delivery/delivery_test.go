package delivery_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/delivery"
)

// The golden report of `kubectl sluice report` (pkg/cli) covers the figures
// in depth; these tests pin what the dashboard relies on.

// Drift events of other kinds and reasons, and before the window, are not counted.
func TestBuild_DriftOnlyOfGitSyncsInTheWindow(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	ev := func(kind, reason string, at time.Time) unstructured.Unstructured {
		e := &eventsv1.Event{Reason: reason, Regarding: corev1.ObjectReference{Kind: kind, Namespace: "ns", Name: "x", APIVersion: "sluice.dev/v1beta1"}}
		e.CreationTimestamp = metav1.NewTime(at)
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
		g.Expect(err).NotTo(HaveOccurred())
		return unstructured.Unstructured{Object: obj}
	}
	rep := delivery.Build(nil, []unstructured.Unstructured{
		ev("GitSync", "DriftCorrected", now),
		ev("GitSync", "DriftCorrected", now.Add(-2*time.Hour)),
		ev("Canary", "DriftCorrected", now),
		ev("GitSync", "Applied", now),
	}, "1h", time.Hour, now)
	g.Expect(rep.GitSyncs).To(Equal([]delivery.DriftReport{{Namespace: "ns", Name: "x", Corrections: 1}}))
	g.Expect(rep.DriftCorrections).To(BeEquivalentTo(1))
}

// One Canary with two promotions and a rollback in a ten-day window: three
// releases started, 0.2 deployments a day, a change failure rate of one in
// three, the lead times' median and p90, and the time to restore.
func TestBuild_FiguresOfACanary(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	h := time.Hour
	c := sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	c.Status.Delivery = &sluicev1beta1.DeliveryStatus{Releases: []sluicev1beta1.DeliveryRecord{
		{StartTime: *at(30 * 24 * h), EndTime: at(30*24*h - h), Outcome: sluicev1beta1.DeliveryPromoted, LeadTimeSeconds: ptr.To[int64](1)}, // before the window
		{StartTime: *at(5 * h), EndTime: at(4 * h), Outcome: sluicev1beta1.DeliveryPromoted, LeadTimeSeconds: ptr.To[int64](600)},
		{StartTime: *at(3 * h), EndTime: at(2 * h), Outcome: sluicev1beta1.DeliveryRolledBack, Cause: sluicev1beta1.RollbackAnalysis, TimeToRestoreSeconds: ptr.To[int64](90)},
		{StartTime: *at(h), EndTime: at(h / 2), Outcome: sluicev1beta1.DeliveryPromoted, LeadTimeSeconds: ptr.To[int64](1200)},
	}}
	rep := delivery.Build([]sluicev1beta1.Canary{c}, nil, "10d", 10*24*h, now)
	g.Expect(rep.Canaries).To(HaveLen(1))
	f := rep.Canaries[0].Figures
	g.Expect(f.ReleasesStarted).To(BeEquivalentTo(3))
	g.Expect(f.Deployments).To(BeEquivalentTo(2))
	g.Expect(f.DeploymentsPerDay).To(Equal(0.2))
	g.Expect(*f.ChangeFailureRate).To(BeNumerically("~", 1.0/3, 1e-9))
	g.Expect(*f.LeadTime.Median).To(BeEquivalentTo(600))
	g.Expect(*f.LeadTime.P90).To(BeEquivalentTo(1200))
	g.Expect(*f.MeanTimeToRestoreSeconds).To(Equal(90.0))
	g.Expect(f.RollbacksByCause).To(Equal(map[string]int64{"Analysis": 1}))
	g.Expect(rep.Total.Deployments).To(Equal(f.Deployments))
}

func TestHumanSeconds(t *testing.T) {
	g := NewWithT(t)
	for in, want := range map[int64]string{45: "45s", 304: "5m4s", 3*3600 + 300: "3h5m", 2*86400 + 3*3600: "2d3h"} {
		g.Expect(delivery.HumanSeconds(in)).To(Equal(want), "%d", in)
	}
}

func TestParseWindow(t *testing.T) {
	g := NewWithT(t)
	d, err := delivery.ParseWindow("30d")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d).To(Equal(30 * 24 * time.Hour))
	d, err = delivery.ParseWindow("90m")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d).To(Equal(90 * time.Minute))
	for _, bad := range []string{"thirty", "-3d", "0d", "5x", ""} {
		_, err := delivery.ParseWindow(bad)
		g.Expect(err).To(MatchError(Or(ContainSubstring("want a number of days"), ContainSubstring("must be positive"))), bad)
	}
}
