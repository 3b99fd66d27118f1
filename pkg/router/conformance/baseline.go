package conformance

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// runBaseline drives a three-way release (spec.analysis.baseline): the
// baseline gets the canary's weight, the routing objects carry a backend
// for <apex>-baseline only while its weight is above 0, and the routes go
// back to two backends at the end of the release. A router that cannot
// split three ways must say so through router.Unsupported, naming the
// providers that can.
func runBaseline(t *testing.T, in Input, newCanary func(*testing.T, sluicev1beta1.CanaryAnalysis) (*sluicev1beta1.Canary, router.Router)) {
	ctx := context.Background()
	g := NewWithT(t)
	a := sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50, Baseline: true}
	if !in.supports(Weights) {
		a = sluicev1beta1.CanaryAnalysis{Iterations: 3, Baseline: true}
	}
	c, rt := newCanary(t, a)
	if _, ok := rt.(router.BaselineRouter); !ok {
		g.Expect(router.Unsupported(rt, c, in.Provider)).To(ContainElement(And(
			ContainSubstring("cannot split traffic three ways"), ContainSubstring("gatewayapi, istio, traefik"))))
		return
	}
	if !in.supports(Baseline) {
		// A BaselineRouter whose per-Canary variant (the gatewayapi router's
		// GRPCRoute) cannot carry a baseline must say so for that Canary.
		g.Expect(router.Unsupported(rt, c, in.Provider)).To(ContainElement(ContainSubstring("cannot split traffic three ways")))
		return
	}
	g.Expect(router.Unsupported(rt, c, in.Provider)).To(BeEmpty())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}), "initialised without a baseline")
	g.Expect(backends(g, in, c)).NotTo(ContainElement(c.BaselineServiceName()), "a baseline backend before the release")

	three := func(canary int32) router.Routes {
		return router.Routes{PrimaryWeight: 100 - 2*canary, BaselineWeight: canary, CanaryWeight: canary}
	}
	for _, r := range []router.Routes{three(10), three(30), three(50)} {
		g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed(), "set %s", r)
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r), "read back %s", r)
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r), "weights kept by Reconcile at %s", r)
		_, primary, canary := c.ServiceNames()
		g.Expect(backends(g, in, c)).To(ContainElements(primary, c.BaselineServiceName(), canary), "at %s", r)
	}
	// Promotion moves the baseline's share to the primary first, then all
	// of it; a rollback goes straight to the primary.
	for _, r := range []router.Routes{{PrimaryWeight: 50, CanaryWeight: 50}, {PrimaryWeight: 100}, three(20), {PrimaryWeight: 100}} {
		g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed(), "set %s", r)
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r), "read back %s", r)
		if r.BaselineWeight == 0 {
			g.Expect(backends(g, in, c)).NotTo(ContainElement(c.BaselineServiceName()), "the baseline backend outlived its traffic at %s", r)
		}
	}
}

// backends are the Services the routing objects of c send requests to.
func backends(g Gomega, in Input, c *sluicev1beta1.Canary) []string {
	var out []string
	for _, o := range in.Objects(c) {
		if names, ok := in.Backends(get(g, in.Client, c.Namespace, o)); ok {
			out = append(out, names...)
		}
	}
	return out
}
