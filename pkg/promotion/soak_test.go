package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func soakMetrics() stageOpt {
	return func(s *sluicev1beta1.PipelineStage) { s.SoakChecks = sluicev1beta1.SoakChecksMetrics }
}

func metricCheck(name string, outcome sluicev1beta1.CheckOutcome, value, msg string) sluicev1beta1.CheckResult {
	r := sluicev1beta1.CheckResult{Name: name, Kind: "metric", Outcome: outcome, Message: msg, Query: "sum(rate(x[1m]))"}
	if value != "" {
		r.Value = &value
	}
	return r
}

func passed(name string) sluicev1beta1.CheckResult {
	return metricCheck(name, sluicev1beta1.CheckPassed, "99.5", name+" 99.5 is within [99, +Inf]")
}

// observeChecks makes the next decide see a round of checks at w.now.
func (w *world) observeChecks(stage string, rs ...sluicev1beta1.CheckResult) {
	if w.soakChecks == nil {
		w.soakChecks = map[string]*SoakChecks{}
	}
	w.soakChecks[stage] = &SoakChecks{At: w.now, Results: rs}
}

// soakingWorld is staging soaking bundle 1.1.0 for 10m with its metrics
// checked, before production.
func soakingWorld(t *testing.T, g Gomega) *world {
	w := newWorld(t, newPipeline(stage("staging", soak(10*time.Minute), soakMetrics()), stage("production")))
	w.canaries["staging"].Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Minute}}
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	d := w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageSoaking))
	g.Expect(d.RequeueAfter).To(Equal(time.Second), "the first check is due at once")
	return w
}

// Metrics that keep passing on the primary verify the bundle when the soak
// ends; the checks are kept in the stage's status, without their queries,
// and the next round is due an analysis interval after the last.
func TestDecide_SoakMetricsPass(t *testing.T) {
	g := NewWithT(t)
	w := soakingWorld(t, g)
	w.observeChecks("staging", passed("request-success-rate"), passed("request-duration"))
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageSoaking))
	g.Expect(st.LastSoakCheck.Time).To(Equal(w.now))
	g.Expect(st.SoakChecks).To(HaveLen(2))
	g.Expect(st.SoakChecks[0].Query).To(BeEmpty())
	g.Expect(*st.SoakChecks[0].Value).To(Equal("99.5"))
	g.Expect(d.RequeueAfter).To(Equal(2*time.Minute), "the analysis interval")

	// Without a new round (not due), the last checks stand.
	w.now = w.now.Add(time.Minute)
	d = w.decide()
	g.Expect(w.status("staging").SoakChecks).To(HaveLen(2))
	g.Expect(d.RequeueAfter).To(Equal(time.Minute))

	w.now = w.now.Add(9 * time.Minute)
	w.observeChecks("staging", passed("request-success-rate"), passed("request-duration"))
	d = w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(w.writesTo("production")).To(HaveLen(1))
	g.Expect(d.Writes).To(HaveLen(1))
}

// A metric out of range on the primary during the soak fails the bundle in
// the stage with SoakFailed, naming the metric, its value and the range;
// it never goes further, even after the soak time.
func TestDecide_SoakMetricFails(t *testing.T) {
	g := NewWithT(t)
	w := soakingWorld(t, g)
	w.now = w.now.Add(4 * time.Minute)
	w.observeChecks("staging", passed("request-duration"),
		metricCheck("request-success-rate", sluicev1beta1.CheckFailed, "80", "request-success-rate 80 is outside [99, +Inf]"))
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageFailed))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonSoakFailed))
	g.Expect(st.Message).To(And(ContainSubstring("request-success-rate 80 is outside [99, +Inf]"), ContainSubstring("goes no further")))
	g.Expect(st.SoakChecks).To(HaveLen(2))
	g.Expect(condition(d.Status, ConditionReady).Reason).To(Equal(sluicev1beta1.PipelineReasonSoakFailed))
	g.Expect(d.Events).To(ContainElement(HaveField("Reason.Reason", sluicev1beta1.PipelineReasonSoakFailed)))

	w.now = w.now.Add(time.Hour)
	g.Expect(w.decide().Writes).To(BeEmpty())
	g.Expect(w.writesTo("production")).To(BeEmpty())
	g.Expect(w.status("staging").Reason).To(Equal(sluicev1beta1.PipelineReasonSoakFailed))
}

// An Error (an unreachable metrics server) or NoData never verifies: the
// soak time passes, the stage stays Soaking with SoakChecksPending and says
// which metric holds it, until a round passes.
func TestDecide_SoakMetricErrorOrNoDataHolds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome sluicev1beta1.CheckOutcome
		msg     string
	}{
		{"Error", sluicev1beta1.CheckError, "connection refused"},
		{"NoData", sluicev1beta1.CheckNoData, "the query returned no data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			w := soakingWorld(t, g)
			w.observeChecks("staging", passed("request-success-rate"))
			w.decide()
			w.now = w.now.Add(10 * time.Minute)
			w.observeChecks("staging", metricCheck("request-success-rate", tc.outcome, "", tc.msg))
			d := w.decide()
			st := w.status("staging")
			g.Expect(st.State).To(Equal(sluicev1beta1.StageSoaking))
			g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonSoakChecksPending))
			g.Expect(st.Message).To(And(ContainSubstring("request-success-rate is "+string(tc.outcome)), ContainSubstring(tc.msg)))
			g.Expect(d.Writes).To(BeEmpty())
			g.Expect(d.RequeueAfter).To(Equal(2 * time.Minute))
			ready := condition(d.Status, ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Message).To(ContainSubstring(tc.msg))

			// Still held an hour later without a passing round.
			w.now = w.now.Add(time.Hour)
			g.Expect(w.decide().Writes).To(BeEmpty())
			g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageSoaking))

			w.observeChecks("staging", passed("request-success-rate"))
			w.decide()
			g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
			g.Expect(w.writesTo("production")).To(HaveLen(1))
		})
	}
}

// A soak whose metrics were never checked (no round ran: the manager was
// down, the Canary unreadable) does not end Verified on time alone.
func TestDecide_SoakMetricsNeverCheckedHolds(t *testing.T) {
	g := NewWithT(t)
	w := soakingWorld(t, g)
	w.now = w.now.Add(11 * time.Minute)
	d := w.decide()
	st := w.status("staging")
	g.Expect(st.State).To(Equal(sluicev1beta1.StageSoaking))
	g.Expect(st.Reason).To(Equal(sluicev1beta1.PipelineReasonSoakChecksPending))
	g.Expect(st.Message).To(ContainSubstring("not checked yet"))
	g.Expect(d.RequeueAfter).To(Equal(time.Second))
	g.Expect(d.Writes).To(BeEmpty())

	// Skipped (noData: Skip) counts as passing, as in the Canary's analysis.
	w.observeChecks("staging", metricCheck("request-success-rate", sluicev1beta1.CheckSkipped, "", "skipped (noData: Skip)"))
	w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
}

// Without soakChecks the soak only waits, and keeps no checks.
func TestDecide_SoakWithoutMetricsIgnoresChecks(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging", soak(10*time.Minute)), stage("production")))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	w.now = w.now.Add(10 * time.Minute)
	w.observeChecks("staging", metricCheck("request-success-rate", sluicev1beta1.CheckFailed, "1", "bad"))
	w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	g.Expect(w.status("staging").SoakChecks).To(BeEmpty())
}

// The checks of a bundle are not carried to the next one.
func TestDecide_SoakChecksBelongToTheBundle(t *testing.T) {
	g := NewWithT(t)
	w := soakingWorld(t, g)
	w.observeChecks("staging", passed("request-success-rate"))
	w.now = w.now.Add(10 * time.Minute)
	w.decide()
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerified))
	w.push("1.2.0")
	w.decide()
	st := w.status("staging")
	g.Expect(st.Bundle).To(Equal(bundleIDOf("1.2.0")))
	g.Expect(st.SoakChecks).To(BeEmpty())
	g.Expect(st.LastSoakCheck).To(BeNil())
}

func TestBoundSoakChecks(t *testing.T) {
	g := NewWithT(t)
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'x'
	}
	rs := make([]sluicev1beta1.CheckResult, 70)
	for i := range rs {
		rs[i] = metricCheck("m", sluicev1beta1.CheckError, string(long), string(long))
	}
	out := boundSoakChecks(rs)
	g.Expect(out).To(HaveLen(sluicev1beta1.PipelineSoakChecksLimit))
	g.Expect(out[0].Message).To(HaveLen(maxSoakCheckMessage))
	g.Expect(*out[0].Value).To(HaveLen(64))
	g.Expect(out[0].Query).To(BeEmpty())
	g.Expect(rs[0].Query).NotTo(BeEmpty(), "the observation is not changed")
	g.Expect(boundSoakChecks(nil)).To(BeNil())
}
