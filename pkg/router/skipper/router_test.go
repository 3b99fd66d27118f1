package skipper_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/skipper"
)

func TestRouter_CanaryIngress(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "skipper")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.UID = "00000000-0000-0000-0000-000000000002"
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	g.Expect(prepare(ctx, env.Client, c)).To(Succeed())
	reg := router.NewRegistry()
	skipper.Register(reg)
	rt, err := reg.New(skipper.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	ing := &networkingv1.Ingress{}
	get := func() *networkingv1.Ingress {
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-canary"}, ing)).To(Succeed())
		return ing
	}
	get()
	// The path to the apex becomes two, to the primary and the canary; the path to another Service is left out.
	g.Expect(ing.Spec.Rules).To(HaveLen(1))
	paths := ing.Spec.Rules[0].HTTP.Paths
	g.Expect(paths).To(HaveLen(2))
	g.Expect([]string{paths[0].Backend.Service.Name, paths[1].Backend.Service.Name}).To(Equal([]string{"app-primary", "app-canary"}))
	g.Expect(paths[0].Path).To(Equal("/"))
	g.Expect(paths[1].Path).To(Equal("/"))
	// Idle: the canary routes are disabled, the user's predicates kept after Sluice's.
	g.Expect(ing.Annotations).To(HaveKeyWithValue(skipper.BackendWeightsAnnotation, `{"app-canary":0,"app-primary":100}`))
	g.Expect(ing.Annotations).To(HaveKeyWithValue(skipper.PredicateAnnotation, `False() && Method("GET")`))
	g.Expect(ing.Annotations).To(HaveKeyWithValue("zalando.org/ratelimit", `ratelimit(20, "1m")`))
	g.Expect(ing.Annotations).NotTo(HaveKey("kubectl.kubernetes.io/last-applied-configuration"))

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	get()
	g.Expect(ing.Annotations).To(HaveKeyWithValue(skipper.BackendWeightsAnnotation, `{"app-canary":40,"app-primary":60}`))
	g.Expect(ing.Annotations).To(HaveKeyWithValue(skipper.PredicateAnnotation, `Weight(100) && Method("GET")`))
	rv := ing.ResourceVersion
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(get().ResourceVersion).To(Equal(rv), "an unchanged Ingress is not written")

	// An Ingress of that name Sluice did not create is not taken over.
	c2 := newCanary(ns)
	c2.Name, c2.UID = "other", "00000000-0000-0000-0000-000000000003"
	c2.Spec.Analysis = c.Spec.Analysis
	g.Expect(rt.Reconcile(ctx, c2)).To(MatchError(ContainSubstring("Ingress app-canary exists and was not created by Sluice for Canary other")))
}

func TestRouter_CheckSpec(t *testing.T) {
	g := NewWithT(t)
	c := newCanary("ns")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	c.Spec.IngressRef = nil
	g.Expect(router.Unsupported(&skipper.Router{}, c, skipper.Name)).To(ConsistOf(ContainSubstring("provider skipper needs spec.ingressRef")))
	c.Spec.IngressRef = &sluicev1beta1.ObjectReference{APIVersion: "extensions/v1beta1", Kind: "Ingress", Name: "app"}
	g.Expect(router.Unsupported(&skipper.Router{}, c, skipper.Name)).To(ConsistOf(ContainSubstring("spec.ingressRef.apiVersion must be networking.k8s.io/v1")))
}
