package cli

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestStatus_ShowsTheComparedValueNextToTheCanarys: a compared metric's
// VALUE column reads "<canary> vs <side> <value>", with the p-value when the
// statistical test ran; a compared check without the other side's value
// (no data there) still names the side.
func TestStatus_ShowsTheComparedValueNextToTheCanarys(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	st := sluicev1beta1.CanaryStatus{
		Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10,
		History: []sluicev1beta1.CanaryStep{{Time: metav1.NewTime(t0), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 10, Message: "1 failed check",
			Checks: []sluicev1beta1.CheckResult{
				{Name: "errors", Kind: "metric", Outcome: sluicev1beta1.CheckFailed, Value: ptrTo("6"), ComparedAgainst: "primary", ComparedValue: ptrTo("2"),
					Message: "errors 6 vs primary 2: worse by 200%, maxIncrease 10%"},
				{Name: "latency", Kind: "metric", Outcome: sluicev1beta1.CheckFailed, Value: ptrTo("640"), ComparedAgainst: "baseline", ComparedValue: ptrTo("410"),
					PValue: ptrTo("0.0004455"), Message: "latency 640 vs baseline 410: significantly higher"},
				{Name: "saturation", Kind: "metric", Outcome: sluicev1beta1.CheckNoData, Value: ptrTo("0.4"), ComparedAgainst: "baseline",
					Message: "baseline: the query returned no data (is it receiving traffic?)"},
			}}},
	}
	newCanary(t, ns, "podinfo", st)

	r := kubectlSluice(ctx, "", "status", "podinfo", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	out := r.out.String()
	g.Expect(out).To(MatchRegexp(`metric\s+errors\s+Failed\s+6 vs primary 2\s+errors 6 vs primary 2: worse by 200%`))
	g.Expect(out).To(MatchRegexp(`metric\s+latency\s+Failed\s+640 vs baseline 410 \(p=0.0004455\)\s+latency 640`))
	g.Expect(out).To(MatchRegexp(`metric\s+saturation\s+NoData\s+0.4 vs baseline\s+baseline: the query returned no data`))
}

// checksLine, the watch view's summary, carries the compared value too.
func TestChecksLine_Compared(t *testing.T) {
	g := NewWithT(t)
	g.Expect(checksLine([]sluicev1beta1.CheckResult{
		{Name: "errors", Kind: "metric", Outcome: sluicev1beta1.CheckPassed, Value: ptrTo("2"), ComparedAgainst: "primary", ComparedValue: ptrTo("2")},
		{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckPassed, Value: ptrTo("99.5")},
		{Name: "load", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed},
	})).To(Equal("errors=2 vs primary 2 Passed, request-success-rate=99.5 Passed, load Passed"))
}
