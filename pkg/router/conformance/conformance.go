// Package conformance is the test suite every router passes: against a real
// API server with the provider's CRDs, it drives a router through the steps a
// release takes and checks what the router reads back.
package conformance

import (
	"context"
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Feature is an optional router capability.
type Feature string

// Optional features; a router lists those it lacks in Input.Unsupported.
const (
	Weights         Feature = "weights"
	Match           Feature = "match"
	Mirror          Feature = "mirror"
	SessionAffinity Feature = "session-affinity"
	// Baseline is the three-way split (router.BaselineRouter). The suite
	// tells it by type assertion, so routers written before it need not
	// list it; a router.BaselineRouter lists it when the Canaries of this
	// Input use a variant without it (then Unsupported must report it).
	Baseline Feature = "baseline"
)

// Input describes a router to the suite.
type Input struct {
	// Provider is the provider name the router is registered under.
	Provider string
	// Register adds the router to a registry.
	Register func(*router.Registry)
	// Client is a client of the test API server whose scheme knows the
	// provider's types.
	Client client.Client
	// Unsupported lists the features the router lacks; the suite checks
	// that router.Unsupported reports them and skips their steps.
	Unsupported []Feature
	// Canary returns a Canary for the provider in namespace ns (service,
	// gatewayRefs, ...); the suite sets its analysis.
	Canary func(ns string) *sluicev1beta1.Canary
	// Objects are the routing objects the router manages for a Canary
	// (kind and name), e.g. the VirtualService; none for kubernetes.
	Objects func(c *sluicev1beta1.Canary) []Object
	// Prepare creates what the router expects to exist besides its own
	// objects (the Services, a Gateway, ...).
	Prepare func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error
	// HandEdit sets weights on the live routing objects as a person would
	// with kubectl edit (required with Objects).
	HandEdit func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary, r router.Routes) error
	// Original returns a routing object as a user had it before Sluice, for
	// the finalize step; nil for a router that refuses to take over an
	// object it did not create (nginx and skipper: their own test checks
	// the refusal), which skips the step.
	Original func(canary *sluicev1beta1.Canary) *unstructured.Unstructured
	// Finalized, when set, checks what Finalize left for a router whose
	// objects are not released to the apex Service: nginx and skipper delete
	// the canary Ingress (the user's Ingress serves the apex), knative sends
	// the Knative Service's traffic to its latest revision. The suite then
	// runs Finalize (twice) after every traffic state the router supports and
	// calls Finalized instead of its release checks.
	Finalized func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error
	// Backends returns the names of the Services a routing object sends
	// requests to (destinations, backends and mirrors) and true, or false
	// for an object that routes nothing (Istio's DestinationRules), which
	// Finalize may leave to the garbage collector (required with Objects).
	Backends func(u *unstructured.Unstructured) ([]string, bool)
	// Namespace creates a fresh namespace.
	Namespace func(ctx context.Context) (string, error)
}

// Object names a routing object.
type Object struct {
	GVK  schema.GroupVersionKind
	Name string
}

func (in Input) supports(f Feature) bool {
	for _, u := range in.Unsupported {
		if u == f {
			return false
		}
	}
	return true
}

// Run runs the suite.
func Run(t *testing.T, in Input) {
	reg := router.NewRegistry()
	in.Register(reg)
	newCanary := func(t *testing.T, analysis sluicev1beta1.CanaryAnalysis) (*sluicev1beta1.Canary, router.Router) {
		g := NewWithT(t)
		ns, err := in.Namespace(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		c := in.Canary(ns)
		c.Spec.Analysis = &analysis
		c.UID = "00000000-0000-0000-0000-000000000001"
		rt, err := reg.New(in.Provider, in.Client)
		g.Expect(err).NotTo(HaveOccurred())
		if in.Prepare != nil {
			g.Expect(in.Prepare(context.Background(), in.Client, c)).To(Succeed())
		}
		return c, rt
	}
	ctx := context.Background()
	routes := func(p, c int32, m bool) router.Routes {
		return router.Routes{PrimaryWeight: p, CanaryWeight: c, Mirrored: m}
	}
	canaryAnalysis := sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50}
	blueGreen := sluicev1beta1.CanaryAnalysis{Iterations: 3}

	t.Run("capabilities are reported", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := newCanary(t, canaryAnalysis)
		c.Spec.Analysis.Mirror = true
		c.Spec.Analysis.SessionAffinity = &sluicev1beta1.SessionAffinity{CookieName: "sticky"}
		got := router.Unsupported(rt, c, in.Provider)
		want := 0
		for _, f := range []Feature{Weights, Mirror, SessionAffinity} {
			// A provider that forces blue/green (kubernetes) needs no weights.
			if !in.supports(f) && (f != Weights || c.Strategy(in.Provider) == sluicev1beta1.StrategyCanary) {
				want++
			}
		}
		g.Expect(got).To(HaveLen(want), "%v", got)
	})

	t.Run("initialise, shift, promote and roll back", func(t *testing.T) {
		g := NewWithT(t)
		a := canaryAnalysis
		if !in.supports(Weights) {
			a = blueGreen
		}
		c, rt := newCanary(t, a)
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(100, 0, false)), "initialised at 100/0")
		steps := []router.Routes{routes(0, 100, false), routes(100, 0, false)}
		if in.supports(Weights) {
			steps = []router.Routes{routes(90, 10, false), routes(50, 50, false), routes(0, 100, false), routes(100, 0, false), routes(50, 50, false), routes(100, 0, false)}
		}
		for _, r := range steps {
			g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed(), "set %s", r)
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r), "read back %s", r)
			// Reconciling the objects keeps the weights in flight.
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r), "weights kept by Reconcile at %s", r)
		}
	})

	t.Run("A/B testing", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := newCanary(t, sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}})
		if !in.supports(Match) {
			g.Expect(router.Unsupported(rt, c, in.Provider)).To(ContainElement(ContainSubstring("cannot route by request match")))
			return
		}
		g.Expect(router.Unsupported(rt, c, in.Provider)).To(BeEmpty())
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.SetRoutes(ctx, c, routes(0, 100, false))).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(0, 100, false)))
		g.Expect(rt.SetRoutes(ctx, c, routes(100, 0, false))).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(100, 0, false)))
	})

	t.Run("mirroring", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := newCanary(t, sluicev1beta1.CanaryAnalysis{Iterations: 3, Mirror: true, MirrorWeight: 50})
		if !in.supports(Mirror) {
			g.Expect(router.Unsupported(rt, c, in.Provider)).To(ContainElement(ContainSubstring("cannot mirror traffic")))
			return
		}
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.SetRoutes(ctx, c, routes(100, 0, true))).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(100, 0, true)))
		g.Expect(rt.SetRoutes(ctx, c, routes(100, 0, false))).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(100, 0, false)))
	})

	t.Run("session affinity", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := newCanary(t, sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50,
			SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "sticky", MaxAge: 60}})
		if !in.supports(SessionAffinity) {
			g.Expect(router.Unsupported(rt, c, in.Provider)).To(ContainElement(ContainSubstring("has no session affinity")))
			return
		}
		c.Status.SessionAffinityCookie = "sticky=abc123"
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		for _, r := range []router.Routes{routes(90, 10, false), routes(50, 50, false), routes(100, 0, false)} {
			g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed())
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(r))
		}
	})

	t.Run("baseline", func(t *testing.T) {
		runBaseline(t, in, newCanary)
	})

	// The steps below need routing objects; the kubernetes provider has none.
	if in.Objects == nil {
		t.Run("finalize leaves the apex Service to the engine", func(t *testing.T) {
			g := NewWithT(t)
			c, rt := newCanary(t, blueGreen)
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.SetRoutes(ctx, c, routes(0, 100, false))).To(Succeed())
			apex, _, _ := c.ServiceNames()
			key := client.ObjectKey{Namespace: c.Namespace, Name: apex}
			before := &corev1.Service{}
			g.Expect(in.Client.Get(ctx, key, before)).To(Succeed())
			g.Expect(rt.Finalize(ctx, c)).To(Succeed())
			after := &corev1.Service{}
			g.Expect(in.Client.Get(ctx, key, after)).To(Succeed())
			g.Expect(after.Spec.Selector).To(Equal(before.Spec.Selector), "Finalize changed the apex Service (the engine's RestoreApex points it at the target)")
			g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion), "Finalize wrote the apex Service")
		})
		return
	}

	t.Run("user fields survive every step", func(t *testing.T) {
		g := NewWithT(t)
		a := canaryAnalysis
		if !in.supports(Weights) {
			a = blueGreen
		}
		c, rt := newCanary(t, a)
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		for _, o := range in.Objects(c) {
			u := get(g, in.Client, c.Namespace, o)
			labels := u.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels["team"] = "web"
			u.SetLabels(labels)
			ann := u.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann["example.com/owner"] = "web@example.com"
			u.SetAnnotations(ann)
			g.Expect(in.Client.Update(ctx, u)).To(Succeed())
		}
		for _, r := range []router.Routes{routes(90, 10, false), routes(100, 0, false)} {
			if !in.supports(Weights) {
				r = routes(100-r.PrimaryWeight, r.PrimaryWeight, false)
			}
			g.Expect(rt.SetRoutes(ctx, c, r)).To(Succeed())
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			for _, o := range in.Objects(c) {
				u := get(g, in.Client, c.Namespace, o)
				g.Expect(u.GetLabels()).To(HaveKeyWithValue("team", "web"), "%s %s lost a user label", o.GVK.Kind, o.Name)
				g.Expect(u.GetAnnotations()).To(HaveKeyWithValue("example.com/owner", "web@example.com"), "%s %s lost a user annotation", o.GVK.Kind, o.Name)
			}
		}
	})

	t.Run("a hand edit of the weights is read back", func(t *testing.T) {
		g := NewWithT(t)
		c, rt := newCanary(t, canaryAnalysis)
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.SetRoutes(ctx, c, routes(90, 10, false))).To(Succeed())
		g.Expect(in.HandEdit(ctx, in.Client, c, routes(20, 80, false))).To(Succeed())
		g.Eventually(func() (router.Routes, error) { return rt.GetRoutes(ctx, c) }).Should(Equal(routes(20, 80, false)))
		g.Expect(rt.SetRoutes(ctx, c, routes(90, 10, false))).To(Succeed())
		g.Expect(rt.GetRoutes(ctx, c)).To(Equal(routes(90, 10, false)))
	})

	t.Run("finalize restores the original", func(t *testing.T) {
		if in.Original == nil {
			// The router refuses to take over an object it did not create;
			// its own test checks the refusal.
			return
		}
		g := NewWithT(t)
		c, rt := newCanary(t, canaryAnalysis)
		orig := in.Original(c)
		orig.SetNamespace(c.Namespace)
		g.Expect(in.Client.Create(ctx, orig)).To(Succeed())
		want := orig.Object["spec"]
		g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
		g.Expect(rt.SetRoutes(ctx, c, routes(50, 50, false))).To(Succeed())
		live := get(g, in.Client, c.Namespace, Object{GVK: orig.GroupVersionKind(), Name: orig.GetName()})
		g.Expect(live.Object["spec"]).NotTo(Equal(want), "the router did not take the object over")
		g.Expect(rt.Finalize(ctx, c)).To(Succeed())
		live = get(g, in.Client, c.Namespace, Object{GVK: orig.GroupVersionKind(), Name: orig.GetName()})
		g.Expect(normalize(live.Object["spec"])).To(Equal(normalize(want)), "Finalize did not restore the original spec")
		g.Expect(live.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
		g.Expect(router.ControlledBy(live, c.UID)).To(BeFalse())
	})

	t.Run("finalize releases created objects to the apex", func(t *testing.T) {
		finalizeReleases(t, in, newCanary)
	})
}

// finalizeReleases checks that Finalize leaves the routing objects a router
// created serving the apex Service only, outliving the Canary, whatever
// traffic state the release was in.
func finalizeReleases(t *testing.T, in Input, newCanary func(*testing.T, sluicev1beta1.CanaryAnalysis) (*sluicev1beta1.Canary, router.Router)) {
	ctx := context.Background()
	type scenario struct {
		name     string
		feature  Feature
		analysis sluicev1beta1.CanaryAnalysis
		routes   router.Routes
		cookie   string
	}
	scenarios := []scenario{
		{name: "weighted", feature: Weights, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50},
			routes: router.Routes{PrimaryWeight: 50, CanaryWeight: 50}},
		{name: "mirrored", feature: Mirror, analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3, Mirror: true, MirrorWeight: 50},
			routes: router.Routes{PrimaryWeight: 100, Mirrored: true}},
		{name: "A/B", feature: Match, analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: []sluicev1beta1.HTTPMatchRequest{
			{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "insider"}}}}},
			routes: router.Routes{CanaryWeight: 100}},
		{name: "baseline", feature: Baseline, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50, Baseline: true},
			routes: router.Routes{PrimaryWeight: 40, BaselineWeight: 30, CanaryWeight: 30}},
		{name: "sticky sessions", feature: SessionAffinity, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50,
			SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "sticky", MaxAge: 60}},
			routes: router.Routes{PrimaryWeight: 50, CanaryWeight: 50}, cookie: "sticky=abc123"},
	}
	if !in.supports(Weights) {
		scenarios = append(scenarios, scenario{name: "blue/green", analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3},
			routes: router.Routes{CanaryWeight: 100}})
	}
	for _, sc := range scenarios {
		if sc.feature != "" && !in.supports(sc.feature) {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			g := NewWithT(t)
			c, rt := newCanary(t, sc.analysis)
			if _, ok := rt.(router.BaselineRouter); sc.feature == Baseline && (!ok || !in.supports(Baseline)) {
				return // the baseline step checks that Unsupported reports it
			}
			c.Status.SessionAffinityCookie = sc.cookie
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.SetRoutes(ctx, c, sc.routes)).To(Succeed())
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(sc.routes))
			if in.Finalized != nil {
				for range 2 {
					g.Expect(rt.Finalize(ctx, c)).To(Succeed())
					g.Expect(in.Finalized(ctx, in.Client, c)).To(Succeed())
				}
				return
			}
			apex, primary, canary := c.ServiceNames()
			routing := 0
			for _, o := range in.Objects(c) {
				u := get(g, in.Client, c.Namespace, o)
				g.Expect(router.ControlledBy(u, c.UID)).To(BeTrue(), "%s %s is not owned by the Canary before Finalize", o.GVK.Kind, o.Name)
				if names, ok := in.Backends(u); ok {
					routing++
					g.Expect(names).To(ContainElements(primary, canary), "%s %s does not route to the primary and the canary before Finalize", o.GVK.Kind, o.Name)
				}
			}
			g.Expect(routing).To(BeNumerically(">", 0), "no routing object to check")
			// Twice: Finalize is retried when a later step of the deletion fails.
			for range 2 {
				g.Expect(rt.Finalize(ctx, c)).To(Succeed())
				for _, o := range in.Objects(c) {
					u := &unstructured.Unstructured{}
					u.SetGroupVersionKind(o.GVK)
					err := in.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: o.Name}, u)
					names, routes := in.Backends(u)
					if !routes {
						// Left to the garbage collector, or gone: no check.
						g.Expect(client.IgnoreNotFound(err)).To(Succeed())
						continue
					}
					g.Expect(err).NotTo(HaveOccurred(), "%s %s did not survive Finalize", o.GVK.Kind, o.Name)
					g.Expect(router.ControlledBy(u, c.UID)).To(BeFalse(), "%s %s is still owned by the Canary: it would be garbage-collected with it", o.GVK.Kind, o.Name)
					g.Expect(u.GetAnnotations()).NotTo(HaveKey(router.OriginalAnnotation))
					g.Expect(names).NotTo(BeEmpty(), "%s %s routes nowhere", o.GVK.Kind, o.Name)
					g.Expect(names).To(HaveEach(apex), "%s %s routes to other Services than the apex", o.GVK.Kind, o.Name)
				}
			}
		})
	}
}

func get(g Gomega, c client.Client, ns string, o Object) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.GVK)
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: o.Name}, u)
	g.Expect(apierrors.IsNotFound(err)).To(BeFalse(), "%s %s does not exist", o.GVK.Kind, o.Name)
	g.Expect(err).NotTo(HaveOccurred())
	return u
}

// normalize gives a value its generic JSON form, so numbers compare equal.
func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
