package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// dbProgressive is dtProgressive (10% steps up to 30%) with a baseline.
func dbProgressive() *sluicev1beta1.CanaryAnalysis {
	a := dtProgressive()
	a.Baseline = true
	return a
}

func dbBaselineReady(o *Observation) { o.Baseline = WorkloadState{Exists: true, Ready: true} }

func dbBaselineWeight(w int32) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.BaselineWeight = w }
}

func TestDecide_Baseline(t *testing.T) {
	three := func(canary int32) *router.Routes {
		return &router.Routes{PrimaryWeight: 100 - 2*canary, BaselineWeight: canary, CanaryWeight: canary}
	}
	tests := []struct {
		name         string
		obs          Observation
		wantPhase    sluicev1beta1.CanaryPhase
		wantActions  []ActionKind
		wantRoutes   *router.Routes
		wantBaseline int32
		wantWait     string
		wantEvents   []string
	}{
		{
			name:        "a new revision creates the baseline before any traffic shifts",
			obs:         dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhSucceeded)), dtTargetHash(dtHashB)),
			wantPhase:   dtPhProgressing,
			wantActions: dtActs(EnsureObjects, ScaleTargetUp, EnsureBaseline, SetRoutes),
			wantRoutes:  dtRoutes(100, 0),
			wantWait:    "CanaryNotReady",
			wantEvents:  dtEvs(string(dtPhProgressing)),
		},
		{
			name:        "the analysis waits for the baseline's pods",
			obs:         dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing)), func(o *Observation) { o.Baseline = WorkloadState{Exists: true, NotReadyMessage: "0 of 1 available"} }),
			wantPhase:   dtPhProgressing,
			wantActions: dtActs(EnsureObjects, EnsureBaseline),
			wantWait:    reasonBaselineNotReady,
		},
		{
			name:        "a baseline not ready within the progress deadline rolls the release back",
			obs:         dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing, dtNotReadyFor(dtDefaultDeadline+time.Second)))),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects, EnsureBaseline, SetRoutes, RunPostRollout),
			wantRoutes:  dtRoutes(100, 0),
			wantEvents:  dtEvs("ProgressDeadlineExceeded", string(dtPhFailed)),
		},
		{
			name:         "the first step gives the baseline the canary's weight: 80/10/10",
			obs:          dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing)), dbBaselineReady, dtWithChecks(dtPassing())),
			wantPhase:    dtPhProgressing,
			wantActions:  dtActs(EnsureObjects, EnsureBaseline, SetRoutes),
			wantRoutes:   three(10),
			wantBaseline: 10,
			wantEvents:   dtEvs("WeightIncreased"),
		},
		{
			name:         "the next step moves both: 40/30/30",
			obs:          dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dbBaselineWeight(20))), dbBaselineReady, dtWithChecks(dtPassing())),
			wantPhase:    dtPhProgressing,
			wantActions:  dtActs(EnsureObjects, EnsureBaseline, SetRoutes),
			wantRoutes:   three(30),
			wantBaseline: 30,
			wantEvents:   dtEvs("WeightIncreased"),
		},
		{
			name:         "promotion keeps the routes until the primary is ready",
			obs:          dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing, dtWeight(30), dbBaselineWeight(30))), dbBaselineReady, dtWithChecks(dtPassing())),
			wantPhase:    dtPhPromoting,
			wantActions:  dtActs(EnsureObjects, EnsureBaseline, PromotePrimary),
			wantBaseline: 30,
			wantWait:     "PrimaryNotReady",
			wantEvents:   dtEvs(string(dtPhPromoting)),
		},
		{
			name: "the promoted primary takes all traffic: two backends again",
			obs: dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhPromoting, dtWeight(30), dbBaselineWeight(30))), dbBaselineReady,
				func(o *Observation) { o.Routes, o.RoutesKnown = *three(30), true }),
			wantPhase:   dtPhFinalising,
			wantActions: dtActs(EnsureObjects, PromotePrimary, SetRoutes),
			wantRoutes:  dtRoutes(100, 0),
			wantEvents:  dtEvs(string(dtPhFinalising)),
		},
		{
			name:        "after the drain the canary is scaled down and the baseline deleted",
			obs:         dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhFinalising, func(s *sluicev1beta1.CanaryStatus) { s.LastTransitionTime = dtAgo(time.Minute) })), dbBaselineReady),
			wantPhase:   dtPhFinalising,
			wantActions: dtActs(EnsureObjects, ScaleTargetToZero, RemoveBaseline),
		},
		{
			name: "a failed check at the threshold routes everything to the primary",
			obs: dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dbBaselineWeight(20), dtFailedChecks(1))), dbBaselineReady,
				dtWithChecks(dtResults(dtMetric(sluicev1beta1.CheckFailed)))),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects, EnsureBaseline, SetRoutes, RunPostRollout),
			wantRoutes:  dtRoutes(100, 0),
			wantEvents:  dtEvs("ThresholdReached", string(dtPhFailed)),
		},
		{
			name:        "a failed release deletes the baseline once drained",
			obs:         dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhFailed, dtApplied(dtHashB), func(s *sluicev1beta1.CanaryStatus) { s.LastTransitionTime = dtAgo(time.Minute) })), dbBaselineReady, dtTargetHash(dtHashB)),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects, RemoveBaseline),
		},
		{
			name:         "a hand edit back to two backends is healed to three",
			obs:          dtObserve(dtCanary(dbProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dbBaselineWeight(10), dtLastStep(time.Second))), dbBaselineReady, func(o *Observation) { o.Routes, o.RoutesKnown = *dtRoutes(90, 10), true }),
			wantPhase:    dtPhProgressing,
			wantActions:  dtActs(EnsureObjects, EnsureBaseline, SetRoutes),
			wantRoutes:   three(10),
			wantBaseline: 10,
			wantEvents:   dtEvs("RoutesRestored"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(tt.obs)
			g.Expect(d.NeedChecks).To(BeNil())
			g.Expect(d.Status.Phase).To(Equal(tt.wantPhase))
			g.Expect(dtKinds(d.Actions)).To(Equal(tt.wantActions))
			g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(tt.wantRoutes))
			g.Expect(d.Status.BaselineWeight).To(Equal(tt.wantBaseline), "status.baselineWeight")
			g.Expect(dtReasons(d.Events)).To(Equal(tt.wantEvents))
			if tt.wantWait != "" {
				g.Expect(d.Status.Conditions).To(ContainElement(HaveField("Reason", tt.wantWait)))
			}
		})
	}
}

// Without spec.analysis.baseline nothing of the baseline happens, and a
// leftover baseline (the field removed mid-release) is deleted once idle.
func TestDecide_NoBaseline(t *testing.T) {
	g := NewWithT(t)
	d := Decide(dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing)), dtWithChecks(dtPassing())))
	g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects, SetRoutes)))
	g.Expect(dtSetRoutesOf(d.Actions)).To(Equal(dtRoutes(90, 10)))
	g.Expect(d.Status.BaselineWeight).To(BeZero())

	d = Decide(dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded, func(s *sluicev1beta1.CanaryStatus) { s.LastTransitionTime = dtAgo(time.Minute) })), dbBaselineReady))
	g.Expect(dtKinds(d.Actions)).To(Equal(dtActs(EnsureObjects, RemoveBaseline)))
}
