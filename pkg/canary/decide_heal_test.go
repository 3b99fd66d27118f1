package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// TestDecide_HealRoutes checks that routes edited by hand are put back to the
// weights the status records, and that an idle Canary is looked at again.
func TestDecide_HealRoutes(t *testing.T) {
	routes := func(o router.Routes) dtObsOpt {
		return func(ob *Observation) { ob.Routes, ob.RoutesKnown = o, true }
	}
	tests := []struct {
		name        string
		obs         Observation
		wantActions []ActionKind
		wantRoutes  *router.Routes
		wantEvents  []string
		wantRequeue time.Duration
	}{
		{
			name:        "idle with routes as recorded: nothing to do, resync later",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), routes(router.Routes{PrimaryWeight: 100})),
			wantActions: []ActionKind{EnsureObjects},
			wantRequeue: idleResync,
		},
		{
			name:        "idle with a hand-edited route: restored to 100/0",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), routes(router.Routes{PrimaryWeight: 40, CanaryWeight: 60})),
			wantActions: []ActionKind{EnsureObjects, SetRoutes},
			wantRoutes:  &router.Routes{PrimaryWeight: 100},
			wantEvents:  []string{"RoutesRestored"},
			wantRequeue: idleResync,
		},
		{
			name: "analysis step not due, route edited: restored to the recorded weight",
			obs: dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(20), dtLastStep(time.Second))),
				routes(router.Routes{PrimaryWeight: 100})),
			wantActions: []ActionKind{EnsureObjects, SetRoutes},
			wantRoutes:  &router.Routes{PrimaryWeight: 80, CanaryWeight: 20},
			wantEvents:  []string{"RoutesRestored"},
		},
		{
			name:        "routes unknown (objects not created yet): nothing",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded))),
			wantActions: []ActionKind{EnsureObjects},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(tt.obs)
			var kinds []ActionKind
			var set *router.Routes
			for _, a := range d.Actions {
				kinds = append(kinds, a.Kind)
				if a.Kind == SetRoutes {
					r := a.Routes
					set = &r
				}
			}
			g.Expect(kinds).To(Equal(tt.wantActions))
			g.Expect(set).To(Equal(tt.wantRoutes))
			var reasons []string
			for _, e := range d.Events {
				reasons = append(reasons, e.Reason)
			}
			g.Expect(reasons).To(Equal(tt.wantEvents))
			if tt.wantRequeue != 0 {
				g.Expect(d.RequeueAfter).To(Equal(tt.wantRequeue))
			}
		})
	}
}

// TestDecide_HeldStep checks that a check held by onError: Hold neither
// counts as a failure nor lets the release advance.
func TestDecide_HeldStep(t *testing.T) {
	g := NewWithT(t)
	c := dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10), dtLastStep(time.Hour)))
	o := dtObserve(c)
	o.Checks = &CheckResults{Checks: []sluicev1beta1.CheckResult{
		{Name: "request-success-rate", Kind: "metric", Outcome: sluicev1beta1.CheckError, Held: true, Message: "connection refused"},
		{Name: "load", Kind: "webhook", Outcome: sluicev1beta1.CheckPassed},
	}}
	d := Decide(o)
	g.Expect(d.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
	g.Expect(d.Status.CanaryWeight).To(Equal(int32(10)))
	g.Expect(d.Status.FailedChecks).To(Equal(int32(0)))
	for _, a := range d.Actions {
		g.Expect(a.Kind).NotTo(Equal(SetRoutes))
	}
	g.Expect(d.Events).To(ContainElement(HaveField("Reason", "CheckHeld")))
	g.Expect(d.Status.History[len(d.Status.History)-1].Message).To(ContainSubstring("connection refused"))
	g.Expect(d.RequeueAfter).To(Equal(c.AnalysisInterval()))
}
