package canary_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
)

// liveReads is the engine's client with its reads of Deployments and
// HTTPRoutes sent straight to the API server as the engine's
// ServiceAccount, as the engine's APIReader and uncached router reads are:
// the manager's cache keeps serving what it last saw after its RBAC is
// revoked (a running watch is not cut), so only a live read shows a denial
// at once.
type liveReads struct {
	client.Client
	live client.Reader
}

func (c liveReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch obj.(type) {
	case *appsv1.Deployment, *gatewayv1.HTTPRoute:
		return c.live.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// readingAsServiceAccount makes the reconciler write as a ServiceAccount of
// the namespace, and read Deployments and HTTPRoutes live as it.
func (f *fixture) readingAsServiceAccount(name string) fixtureOption {
	return func(r *canary.CanaryReconciler) {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + f.ns + ":" + name}
		writer, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: r.Client}})
		f.g.Expect(err).NotTo(HaveOccurred())
		live, err := client.New(cfg, client.Options{Scheme: scheme})
		f.g.Expect(err).NotTo(HaveOccurred())
		r.Client = liveReads{Client: writer, live: live}
	}
}

// withoutGet takes the get verb away from the rules naming a resource: the
// engine may still write it, not read it.
func withoutGet(rules []rbacv1.PolicyRule, resource string) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		if slices.Contains(r.Resources, resource) {
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == "get" || v == "*" })
		}
		out = append(out, r)
	}
	return out
}

// Given a release in progress, run by an engine whose ServiceAccount holds
// the generated roles, when the role loses the right to read the HTTPRoute
// (then, later, the target Deployment): the failed read is in status
// (Ready=False, ObserveFailed, the API server's message) and in one Warning
// event, the weight stays where it was on the Canary and on the route (a
// partial observation decides nothing), and when the right comes back the
// release goes on to Succeeded and Ready tells the release's story again.
func TestCanary_FailedObservationIsInStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.stop()
	const sa = "sluice"
	engine := f.generatedRules("engine")
	f.grant(sa, "engine", engine)
	routes := f.generatedRules("gatewayapi")
	f.grant(sa, "routes", routes)
	f.stop = f.startManager(f.readingAsServiceAccount(sa))

	f.deployment("blind", "1.0", 1)
	f.canary("blind", "blind", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.Hosts = []string{"blind.example.com"}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{
			Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, StepWeight: 5, MaxWeight: 95,
		}
	})
	f.waitPhase("blind", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("blind", "2.0")
	f.g.Eventually(f.weight("blind")).Should(BeNumerically(">=", 5), func() string { return f.describe("blind") })

	routeRole := &rbacv1.Role{}
	f.update(routeRole, "routes", func() { routeRole.Rules = withoutGet(routes, "httproutes") })
	f.expectBlind("blind", "httproutes", sa)
	f.update(routeRole, "routes", func() { routeRole.Rules = routes })
	f.g.Eventually(func() *metav1.Condition { return f.condition("blind", sluicev1beta1.ReadyCondition) }).Should(
		HaveField("Reason", Not(Equal(canary.ObserveFailedReason))), func() string { return f.describe("blind") })

	engineRole := &rbacv1.Role{}
	f.update(engineRole, "engine", func() { engineRole.Rules = withoutGet(engine, "deployments") })
	f.expectBlind("blind", "deployments", sa)
	f.update(engineRole, "engine", func() { engineRole.Rules = engine })

	f.waitPhase("blind", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Eventually(func() *metav1.Condition { return f.condition("blind", sluicev1beta1.ReadyCondition) }).Should(And(
		HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", string(sluicev1beta1.CanaryPhaseSucceeded)),
	))
}

// expectBlind waits for a Canary's Ready condition to say that the engine
// cannot read a resource, then checks that the release holds still while
// it stays so: the weight on the Canary and on its HTTPRoute do not move,
// the phase stays Progressing, and each distinct failure is announced by
// one event.
func (f *fixture) expectBlind(name, resource, sa string) {
	f.t.Helper()
	f.g.Eventually(func() *metav1.Condition { return f.condition(name, sluicev1beta1.ReadyCondition) }).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", canary.ObserveFailedReason),
		HaveField("Message", And(ContainSubstring(resource), ContainSubstring("forbidden"), ContainSubstring("system:serviceaccount:"+f.ns+":"+sa))),
	), func() string { return f.describe(name) })
	// The reconcile that saw the failure may have been deciding a step
	// already: read the weight once the failure is recorded.
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, name)).To(Succeed())
	f.g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
	held := c.Status.CanaryWeight
	f.g.Consistently(func(g Gomega) {
		now := &sluicev1beta1.Canary{}
		g.Expect(f.get(now, name)).To(Succeed())
		g.Expect(now.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
		g.Expect(now.Status.CanaryWeight).To(Equal(held))
		g.Expect(f.routeWeights(name)()).To(Equal([]int32{100 - held, held}))
		g.Expect(f.failedReads(name, resource)).NotTo(ContainElement(BeNumerically(">", 1)))
	}, 4*time.Second, 250*time.Millisecond).Should(Succeed(), func() string { return strings.Join(f.eventNotes(name), "\n") })
	f.g.Eventually(func() map[string]int { return f.failedReads(name, resource) }).ShouldNot(BeEmpty())
}

// failedReads counts the ObserveFailed events about a Canary that name a
// resource, by message. A failure is announced once per distinct message:
// while RBAC changes reach the API server's authorizer, one reconcile can
// fail on the baseline and the next on the target, two messages.
func (f *fixture) failedReads(name, resource string) map[string]int {
	out := map[string]int{}
	for _, note := range f.eventNotes(name) {
		if strings.HasPrefix(note, canary.ObserveFailedReason+": ") && strings.Contains(note, `"`+resource+`"`) {
			out[note]++
		}
	}
	return out
}

// weight reads a Canary's status.canaryWeight, for Eventually.
func (f *fixture) weight(name string) func() (int32, error) {
	return func() (int32, error) {
		c := &sluicev1beta1.Canary{}
		err := f.get(c, name)
		return c.Status.CanaryWeight, err
	}
}

// routeWeights reads the weights of the first rule of a Canary's HTTPRoute
// (primary, canary), as the API server holds them.
func (f *fixture) routeWeights(name string) func() ([]int32, error) {
	return func() ([]int32, error) {
		r := &gatewayv1.HTTPRoute{}
		if err := f.get(r, name); err != nil {
			return nil, err
		}
		var out []int32
		if len(r.Spec.Rules) > 0 {
			for _, b := range r.Spec.Rules[0].BackendRefs {
				w := int32(1)
				if b.Weight != nil {
					w = *b.Weight
				}
				out = append(out, w)
			}
		}
		return out, nil
	}
}

// eventNotes lists the events about a Canary as "<reason>: <note>", in
// the order the API server returns them.
func (f *fixture) eventNotes(name string) []string {
	list := &eventsv1.EventList{}
	f.g.Expect(env.Client.List(f.ctx, list, client.InNamespace(f.ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Canary" && e.Regarding.Name == name {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}
