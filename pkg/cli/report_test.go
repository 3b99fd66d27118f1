package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// rtRelease builds a release record: started start ago, lasting dur,
// committed commitBefore and applied appliedBefore the start.
func rtRelease(now time.Time, outcome sluicev1beta1.DeliveryOutcome, start, dur, commitBefore, appliedBefore time.Duration) sluicev1beta1.DeliveryRecord {
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	r := sluicev1beta1.DeliveryRecord{Revision: "rev", StartTime: *at(start), Outcome: outcome}
	if outcome != sluicev1beta1.DeliveryRunning {
		r.EndTime = at(start - dur)
	}
	if commitBefore > 0 {
		r.SourceRevision = "main@sha1:abc"
		r.CommitTime, r.AppliedTime = at(start+commitBefore), at(start+appliedBefore)
		if outcome == sluicev1beta1.DeliveryPromoted {
			r.LeadTimeSeconds = ptr.To(int64((commitBefore + dur).Seconds()))
		}
	}
	return r
}

// rtDelivery is the delivery status of two Canaries and a GitSync's drift:
// web has 3 promotions in the window (lead times 1h10m, 30m10m, 2h), one
// before it, an analysis rollback (restored in 2m) and an abort; api has 32
// records, all promotions without a Git source, the oldest 10 days ago.
func rtDelivery(now time.Time) (web, api sluicev1beta1.DeliveryStatus) {
	m, h, d := time.Minute, time.Hour, 24*time.Hour
	rb := rtRelease(now, sluicev1beta1.DeliveryRolledBack, 3*d, 5*m, 0, 0)
	rb.Cause, rb.FirstFailureTime, rb.TimeToRestoreSeconds = sluicev1beta1.RollbackAnalysis, &metav1.Time{Time: now.Add(-3*d + 3*m)}, ptr.To(int64(120))
	ab := rtRelease(now, sluicev1beta1.DeliveryRolledBack, 2*d, 1*m, 0, 0)
	ab.Cause = sluicev1beta1.RollbackAborted
	web = sluicev1beta1.DeliveryStatus{
		ReleasesStarted: 7, Promotions: 4, Rollbacks: sluicev1beta1.RollbackCounts{Analysis: 1, Aborted: 1},
		Releases: []sluicev1beta1.DeliveryRecord{
			rtRelease(now, sluicev1beta1.DeliveryPromoted, 40*d, 10*m, h, 30*m), // before the window
			rtRelease(now, sluicev1beta1.DeliveryPromoted, 20*d, 10*m, h, 50*m),
			rtRelease(now, sluicev1beta1.DeliveryPromoted, 10*d, 10*m, 20*m, 5*m),
			rb,
			rtRelease(now, sluicev1beta1.DeliveryPromoted, 2*d+h, 20*m, 100*m, 10*m),
			ab,
			rtRelease(now, sluicev1beta1.DeliveryRunning, h, 0, 0, 0),
		},
	}
	api = sluicev1beta1.DeliveryStatus{ReleasesStarted: 40, Promotions: 40}
	for i := range sluicev1beta1.DeliveryRecordLimit {
		api.Releases = append(api.Releases, rtRelease(now, sluicev1beta1.DeliveryPromoted, 10*d-time.Duration(i)*h, 3*m, 0, 0))
	}
	return web, api
}

// Given two Canaries with release records and a GitSync that corrected
// drift, `kubectl sluice report --since 30d` prints the figures of each and
// their total, the drift corrections and a note on the Canary whose records
// do not reach back to the start of the window, as in the golden files,
// in a table and as JSON.
func TestReport_Golden(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	now := time.Now().Truncate(time.Second)
	web, api := rtDelivery(now)
	newCanary(t, ns, "web", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, Delivery: &web})
	newCanary(t, ns, "api", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded, Delivery: &api})
	newCanary(t, ns, "idle", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseInitialized})
	for i, e := range []struct {
		note  string
		count int32
	}{{"Deployment/apps/web was changed outside Git and put back as in main@sha1:abc", 3}, {"12 more objects were changed or deleted outside Git and put back", 0}} {
		ev := &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-" + string(rune('a'+i))},
			EventTime:  metav1.NewMicroTime(now), ReportingController: "sluice-gitsync", ReportingInstance: "test",
			Action: "Reapply", Reason: "DriftCorrected", Type: "Warning", Note: e.note,
			Regarding: corev1ObjectReference("GitSync", ns, "apps"),
		}
		if e.count > 0 {
			ev.Series = &eventsv1.EventSeries{Count: e.count, LastObservedTime: metav1.NewMicroTime(now)}
		}
		g.Expect(env.Client.Create(ctx, ev)).To(Succeed())
	}

	for _, tc := range []struct{ name, format string }{{"report", ""}, {"report-json", "json"}} {
		args := []string{"report", "--since", "30d", "-n", ns}
		if tc.format != "" {
			args = append(args, "-o", tc.format)
		}
		r := kubectlSluice(ctx, "", args...)
		g.Expect(r.err).NotTo(HaveOccurred(), r.errOut.String())
		out := strings.ReplaceAll(r.out.String(), ns, "NAMESPACE")
		golden := filepath.Join("testdata", "report", tc.name+".golden")
		if *update {
			g.Expect(os.MkdirAll(filepath.Dir(golden), 0o755)).To(Succeed())
			g.Expect(os.WriteFile(golden, []byte(out), 0o644)).To(Succeed())
		}
		want, err := os.ReadFile(golden)
		g.Expect(err).NotTo(HaveOccurred(), "run go test ./pkg/cli -run TestReport -update to create the golden files")
		g.Expect(out).To(Equal(string(want)), tc.name)
	}

	// The figures, checked by hand rather than only against the golden file.
	r := kubectlSluice(ctx, "", "report", "--since", "30d", "-n", ns, "-o", "json")
	g.Expect(r.err).NotTo(HaveOccurred())
	var rep Report
	g.Expect(json.Unmarshal([]byte(r.out.String()), &rep)).To(Succeed())
	g.Expect(rep.Canaries).To(HaveLen(3))
	w := rep.Canaries[2]
	g.Expect(w.Name).To(Equal("web"))
	g.Expect(w.Deployments).To(Equal(int64(3)))
	g.Expect(w.ReleasesStarted).To(Equal(int64(6)))
	g.Expect(w.Rollbacks).To(Equal(int64(2)))
	g.Expect(*w.ChangeFailureRate).To(BeNumerically("~", 2.0/6, 1e-9))
	g.Expect(w.DeploymentsPerDay).To(Equal(0.1))
	g.Expect(*w.LeadTime.Median).To(Equal(int64(4200)), "lead times 30m, 1h10m, 2h: median 1h10m")
	g.Expect(*w.LeadTime.P90).To(Equal(int64(7200)))
	g.Expect(*w.MeanTimeToRestoreSeconds).To(Equal(120.0))
	g.Expect(rep.Total.Deployments).To(Equal(int64(35)))
	g.Expect(rep.DriftCorrections).To(Equal(int64(15)))
	g.Expect(rep.Notes).To(HaveLen(1))
	g.Expect(rep.Notes[0]).To(ContainSubstring("/api"))
}

func corev1ObjectReference(kind, ns, name string) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: kind, Namespace: ns, Name: name, APIVersion: "sluice.dev/v1beta1"}
}

// Bad flags get clear errors.
func TestReport_RejectsABadWindow(t *testing.T) {
	g := NewWithT(t)
	for _, s := range []string{"thirty", "-3d", "0d", "5x"} {
		r := kubectlSluice(context.Background(), "", "report", "--since", s)
		g.Expect(r.err).To(MatchError(ContainSubstring("invalid --since")), s)
	}
	r := kubectlSluice(context.Background(), "", "report", "-o", "xml")
	g.Expect(r.err).To(MatchError(ContainSubstring("unknown output format")))
}
