package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Helpers of the analysis-feature tests start with da.

func daInconclusiveSince(d time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.InconclusiveSince = dtAgo(d) }
}
func daSuccesses(n int32) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.ConsecutiveSuccesses = n }
}
func daReleaseStarted(d time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.ReleaseStartTime = dtAgo(d) }
}
func daSteps(n int) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) {
		for i := range n {
			s.History = append(s.History, sluicev1beta1.CanaryStep{Time: *dtAgo(time.Duration(n-i) * dtInterval), Phase: dtPhProgressing, Message: "old"})
		}
	}
}

// daWith changes the analysis of a test Canary.
func daWith(a *sluicev1beta1.CanaryAnalysis, f func(a *sluicev1beta1.CanaryAnalysis)) *sluicev1beta1.CanaryAnalysis {
	f(a)
	return a
}

func daInconclusive(dryRun bool) sluicev1beta1.CheckResult {
	v := "97"
	return sluicev1beta1.CheckResult{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckInconclusive, Value: &v, DryRun: dryRun,
		Message: "request-success-rate 97 is inconclusive: outside [99, +Inf] but within inconclusiveRange [95, 99]"}
}

func daLastStep(g Gomega, d Decision) sluicev1beta1.CanaryStep {
	g.Expect(d.Status.History).NotTo(BeEmpty())
	return d.Status.History[len(d.Status.History)-1]
}

// TestDecide_Inconclusive: an inconclusive metric pauses the release (no
// traffic change, no failure counted) with a condition and an event that
// quote the metric, its value and ranges, until promote, abort or the
// progress deadline.
func TestDecide_Inconclusive(t *testing.T) {
	incl := dtResults(daInconclusive(false), dtWebhook(sluicev1beta1.CheckPassed))
	dtRunCases(t, []dtDecideCase{
		{
			name:        "an inconclusive step pauses at the current weight",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtWithChecks(incl)),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs(reasonInconclusive),
			wantConds:   dtReleasing(reasonInconclusive),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince.Time).To(Equal(dtNow))
				g.Expect(d.Status.LastStepTime.Time).To(Equal(dtNow))
				step := daLastStep(g, d)
				g.Expect(step.Message).To(ContainSubstring("request-success-rate 97 is inconclusive: outside [99, +Inf] but within inconclusiveRange [95, 99]"))
				g.Expect(step.Message).To(ContainSubstring("kubectl sluice promote"))
				g.Expect(step.Checks).To(Equal(incl.Checks))
				g.Expect(dtEventNamed(d, reasonInconclusive).Warning).To(BeTrue())
				g.Expect(dtEventNamed(d, reasonInconclusive).Message).To(ContainSubstring("request-success-rate 97"))
			},
		},
		{
			name: "paused: no step runs, the wait lasts until the deadline",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(time.Minute),
				dtLastStep(time.Minute), func(s *sluicev1beta1.CanaryStatus) {
					s.History = []sluicev1beta1.CanaryStep{{Phase: dtPhProgressing, Message: "Analysis paused, inconclusive: request-success-rate 97"}}
				}))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtDefaultDeadline - time.Minute,
			wantConds:   dtReleasing(reasonInconclusive),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince.Time).To(Equal(dtNow.Add(-time.Minute)))
			},
		},
		{
			name: "paused past the analysis interval: still no step",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(3*dtInterval),
				dtLastStep(3*dtInterval)))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtDefaultDeadline - 3*dtInterval,
			wantConds:   dtReleasing(reasonInconclusive),
		},
		{
			name: "paused, then promote: promoted, the pause ends",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(time.Minute)),
				dtAnnotate(dtAnnotationPromote, "now"))),
			wantPhase:   dtPhPromoting,
			wantWeight:  20,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs(string(dtPhPromoting)),
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
			},
		},
		{
			name: "paused, then abort: rolled back",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(time.Minute)),
				dtAnnotate(dtAnnotationAbort, "now"))),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs("Aborted", string(dtPhFailed)),
			wantConds:   dtFailed("Aborted"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
			},
		},
		{
			name:        "paused past the progress deadline: rolled back, Stalled InconclusiveExpired",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(dtDefaultDeadline)))),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs(reasonInconclusiveExpired, string(dtPhFailed)),
			wantConds:   dtFailed(reasonInconclusiveExpired),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
				g.Expect(rollbackCauses[reasonInconclusiveExpired]).To(Equal(sluicev1beta1.RollbackAnalysis), "counted as an analysis rollback")
			},
		},
		{
			name: "paused past the deadline while the canary is not ready: rolled back, not stretched by a second deadline",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(dtDefaultDeadline))),
				dtTargetNotReady("crash loop")),
			wantPhase:   dtPhFailed,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, SetRoutes, RunPostRollout),
			wantRequeue: maxDrain,
			wantEvents:  dtEvs(reasonInconclusiveExpired, string(dtPhFailed)),
			wantConds:   dtFailed(reasonInconclusiveExpired),
		},
		{
			name:             "a failure in the same step wins: it counts, no pause",
			obs:              dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20))), dtWithChecks(dtResults(daInconclusive(false), dtWebhook(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       20,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
			},
		},
		{
			name: "a new revision during the pause restarts the analysis",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), daInconclusiveSince(time.Minute))),
				dtTargetHash(dtHashC)),
			wantPhase:   dtPhProgressing,
			wantRoutes:  dtRoutes(100, 0),
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("Restarted"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
			},
		},
	})
}

// TestDecide_DryRun: a dry-run metric never fails, holds or pauses; the
// step's message says what it would have decided.
func TestDecide_DryRun(t *testing.T) {
	failedDry := dtMetric(sluicev1beta1.CheckFailed)
	failedDry.Name, failedDry.DryRun, failedDry.Message = "p99-latency", true, "p99-latency 900 is outside [-Inf, 500]"
	dtRunCases(t, []dtDecideCase{
		{
			name:        "a failing dry-run metric: the weight advances, no failure counted",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckPassed), failedDry))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				step := daLastStep(g, d)
				g.Expect(step.Message).To(Equal("Canary weight 20%; dry run: p99-latency Failed would have failed the step (p99-latency 900 is outside [-Inf, 500])"))
				g.Expect(step.Checks).To(ContainElement(failedDry))
			},
		},
		{
			name:        "an inconclusive dry-run metric does not pause",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtResults(daInconclusive(true)))),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.InconclusiveSince).To(BeNil())
				g.Expect(daLastStep(g, d).Message).To(ContainSubstring("request-success-rate Inconclusive would have paused the release"))
			},
		},
		{
			name:        "the last step with a failing dry run: promoted",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(30))), dtWithChecks(dtResults(failedDry))),
			wantPhase:   dtPhPromoting,
			wantWeight:  30,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs(string(dtPhPromoting)),
			wantConds:   dtReleasing("PrimaryNotReady"),
		},
	})
}

// TestDecide_InitialDelay: metrics within their initialDelay (from the start
// of the release) are named in the check request, to be Skipped.
func TestDecide_InitialDelay(t *testing.T) {
	delayed := func() *sluicev1beta1.CanaryAnalysis {
		return daWith(dtProgressive(), func(a *sluicev1beta1.CanaryAnalysis) {
			a.Metrics = []sluicev1beta1.CanaryMetric{
				{Name: "request-success-rate", InitialDelay: &metav1.Duration{Duration: 5 * time.Minute}},
				{Name: "request-duration"},
			}
		})
	}
	dtRunCases(t, []dtDecideCase{
		{
			name: "2 minutes into the release: the delayed metric is skipped",
			obs:  dtObserve(dtCanary(delayed(), dtStatus(dtPhProgressing, dtWeight(10), daReleaseStarted(2*time.Minute)))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout, Delayed: map[string]string{
				"request-success-rate": "not checked until the release has run for 5m0s (initialDelay); it has run for 2m0s",
			}},
		},
		{
			name:       "past the delay: every metric is checked",
			obs:        dtObserve(dtCanary(delayed(), dtStatus(dtPhProgressing, dtWeight(10), daReleaseStarted(5*time.Minute)))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout},
		},
		{
			name:       "the pre-rollout step measures no metric: nothing to delay",
			obs:        dtObserve(dtCanary(delayed(), dtStatus(dtPhProgressing, daReleaseStarted(time.Minute)))),
			wantChecks: &CheckRequest{Analysis: dtHookPreRollout},
		},
	})
}

// TestDecide_SuccessLimit: successLimit consecutive passing steps end the
// analysis before the last weight or iteration; a failed, held or
// inconclusive step starts the count again; pre-rollout steps and steps with
// a metric in its initialDelay do not count.
func TestDecide_SuccessLimit(t *testing.T) {
	limit := func(a *sluicev1beta1.CanaryAnalysis, n int32) *sluicev1beta1.CanaryAnalysis {
		return daWith(a, func(a *sluicev1beta1.CanaryAnalysis) { a.SuccessLimit = n })
	}
	skipped := dtResults(sluicev1beta1.CheckResult{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckSkipped, Reason: reasonInitialDelay})
	held := dtResults(sluicev1beta1.CheckResult{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckError, Held: true})
	dtRunCases(t, []dtDecideCase{
		{
			name:        "one success short: the weight advances, the count grows",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 2), dtStatus(dtPhProgressing, dtWeight(10))), dtWithChecks(dtPassing())),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(Equal(int32(1)))
			},
		},
		{
			name:        "the limit reached below maxWeight: promoted",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 2), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1))), dtWithChecks(dtPassing())),
			wantPhase:   dtPhPromoting,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects, PromotePrimary),
			wantRequeue: waitRetry,
			wantEvents:  dtEvs(string(dtPhPromoting)),
			wantConds:   dtReleasing("PrimaryNotReady"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(Equal(int32(2)))
				g.Expect(daLastStep(g, d).Message).To(Equal("Analysis complete: 2 consecutive successful steps (successLimit)"))
			},
		},
		{
			name:           "blue/green: the limit before the last iteration promotes with all traffic on the canary",
			obs:            dtObserve(dtCanary(limit(dtBlueGreen(), 2), dtStatus(dtPhProgressing, dtIterations(1), daSuccesses(1))), dtWithChecks(dtPassing())),
			wantPhase:      dtPhPromoting,
			wantWeight:     100,
			wantRoutes:     dtRoutes(0, 100),
			wantIterations: 1,
			wantActions:    dtActs(EnsureObjects, SetRoutes, PromotePrimary),
			wantRequeue:    waitRetry,
			wantEvents:     dtEvs(string(dtPhPromoting)),
			wantConds:      dtReleasing("PrimaryNotReady"),
		},
		{
			name:             "a failed step starts the count again",
			obs:              dtObserve(dtCanary(limit(dtProgressive(), 2), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1))), dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
			wantPhase:        dtPhProgressing,
			wantWeight:       10,
			wantFailedChecks: 1,
			wantActions:      dtActs(EnsureObjects),
			wantRequeue:      dtInterval,
			wantEvents:       dtEvs("CheckFailed"),
			wantConds:        dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(BeZero())
			},
		},
		{
			name:        "a held step starts the count again",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 3), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1))), dtWithChecks(held)),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("CheckHeld"),
			wantConds:   dtReleasing("CheckHeld"),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(BeZero())
			},
		},
		{
			name:        "an inconclusive step starts the count again",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 3), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1))), dtWithChecks(dtResults(daInconclusive(false)))),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs(reasonInconclusive),
			wantConds:   dtReleasing(reasonInconclusive),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(BeZero())
			},
		},
		{
			name:        "the pre-rollout step never counts, even with successLimit 1",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 1), dtStatus(dtPhProgressing)), dtWithChecks(dtPassing())),
			wantPhase:   dtPhProgressing,
			wantWeight:  10,
			wantRoutes:  dtRoutes(90, 10),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(BeZero())
			},
		},
		{
			name:        "a step that skipped a metric for its initialDelay does not count",
			obs:         dtObserve(dtCanary(limit(dtProgressive(), 2), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1))), dtWithChecks(skipped)),
			wantPhase:   dtPhProgressing,
			wantWeight:  20,
			wantRoutes:  dtRoutes(80, 20),
			wantActions: dtActs(EnsureObjects, SetRoutes),
			wantRequeue: dtInterval,
			wantEvents:  dtEvs("WeightIncreased"),
			wantConds:   dtReleasing(string(dtPhProgressing)),
			check: func(g Gomega, d Decision) {
				g.Expect(d.Status.ConsecutiveSuccesses).To(Equal(int32(1)))
			},
		},
		{
			name:       "the step that may reach the limit asks confirm-promotion",
			obs:        dtObserve(dtCanary(limit(dtProgressive(), 2), dtStatus(dtPhProgressing, dtWeight(10), daSuccesses(1)), dtHooks(dtHookConfirmPromote, dtHookConfirmTraffic))),
			wantChecks: &CheckRequest{Analysis: dtHookRollout, Gates: []string{dtHookConfirmPromote}},
		},
	})
}

// TestDecide_HistoryLimit: status.history keeps historyLimit steps, 10 by default.
func TestDecide_HistoryLimit(t *testing.T) {
	for _, tt := range []struct {
		limit int32
		want  int
	}{{0, 10}, {3, 3}, {50, 21}} {
		g := NewWithT(t)
		a := daWith(dtProgressive(), func(a *sluicev1beta1.CanaryAnalysis) { a.HistoryLimit = tt.limit })
		d := Decide(dtObserve(dtCanary(a, dtStatus(dtPhProgressing, dtWeight(10), daSteps(20))), dtWithChecks(dtPassing())))
		g.Expect(d.Status.History).To(HaveLen(tt.want), "historyLimit %d", tt.limit)
		g.Expect(daLastStep(g, d).Message).To(Equal("Canary weight 20%"))
	}
}
