package canary_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Given a progressive canary with spec.analysis.baseline on the Gateway API
// router, a release creates <target>-baseline (the primary's version, the
// canary's replicas) and its Service before traffic shifts, routes three
// ways (primary/baseline/canary) during the analysis, and removes the
// baseline after a promotion and after a rollback.
func TestCanary_Baseline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("bl", "1.0", 2)
	f.canary("bl", "bl", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1,
			StepWeight: 20, MaxWeight: 40, Baseline: true,
			Webhooks: []sluicev1beta1.CanaryWebhook{hook("gate", "rollout", f.hooks.url("/gate"))}}
	})
	f.waitPhase("bl", sluicev1beta1.CanaryPhaseInitialized)
	weights := func() (string, error) {
		r := &gatewayv1.HTTPRoute{}
		if err := f.get(r, "bl"); err != nil {
			return "", err
		}
		var out []string
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				out = append(out, string(b.Name)+"="+strconv.Itoa(int(ptr.Deref(b.Weight, 1))))
			}
		}
		return strings.Join(out, ","), nil
	}
	baselineGone := func() bool {
		d, s := &appsv1.Deployment{}, &corev1.Service{}
		return apierrors.IsNotFound(f.get(d, "bl-baseline")) && apierrors.IsNotFound(f.get(s, "bl-baseline"))
	}
	f.g.Expect(weights()).To(Equal("bl-primary=100,bl-canary=0"))
	f.g.Expect(baselineGone()).To(BeTrue(), "a baseline before any release")

	// Release 2.0: promoted.
	f.setImage("bl", "2.0")
	f.g.Eventually(f.image("bl-baseline")).Should(Equal("example.com/app:1.0"), "the baseline runs the primary's version")
	base := &appsv1.Deployment{}
	f.g.Expect(f.get(base, "bl-baseline")).To(Succeed())
	f.g.Expect(base.Spec.Replicas).To(Equal(ptr.To[int32](2)), "as many replicas as the canary")
	f.g.Expect(base.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "bl-baseline"}))
	f.g.Expect(base.Spec.Template.Labels).To(HaveKeyWithValue("app", "bl-baseline"))
	f.g.Expect(metav1.IsControlledBy(base, blCanary(f, "bl"))).To(BeTrue())
	svc := &corev1.Service{}
	f.g.Eventually(func() error { return f.get(svc, "bl-baseline") }).Should(Succeed())
	f.g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "bl-baseline"}))
	f.g.Expect(svc.Spec.Ports).To(ContainElement(HaveField("Port", int32(80))))
	f.g.Eventually(weights).Should(Equal("bl-primary=60,bl-baseline=20,bl-canary=20"))
	f.g.Eventually(func() (int32, error) {
		c := &sluicev1beta1.Canary{}
		err := f.get(c, "bl")
		return c.Status.BaselineWeight, err
	}).Should(Equal(int32(20)))
	f.g.Eventually(weights).Should(Equal("bl-primary=20,bl-baseline=40,bl-canary=40"))
	f.waitPhase("bl", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(weights()).To(Equal("bl-primary=100,bl-canary=0"))
	f.g.Eventually(baselineGone).Should(BeTrue(), "the baseline outlived the promotion: %s", f.describe("bl"))
	f.g.Expect(f.image("bl-primary")()).To(Equal("example.com/app:2.0"))

	// Release 3.0: the gate fails at the first step → rolled back.
	f.setImage("bl", "3.0")
	f.g.Eventually(f.image("bl-baseline")).Should(Equal("example.com/app:2.0"), "the baseline runs the promoted version")
	f.g.Eventually(weights).Should(Equal("bl-primary=60,bl-baseline=20,bl-canary=20"))
	f.hooks.set("/gate", http.StatusInternalServerError)
	f.waitPhase("bl", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(weights()).To(Equal("bl-primary=100,bl-canary=0"))
	f.g.Eventually(baselineGone).Should(BeTrue(), "the baseline outlived the rollback: %s", f.describe("bl"))
	f.g.Expect(blCanary(f, "bl").Status.BaselineWeight).To(BeZero())
}

// The kubernetes provider cannot split three ways: the Canary is Stalled
// with UnsupportedFeature, naming the providers that can, and no baseline
// is created.
func TestCanary_BaselineUnsupportedByKubernetesRouter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("k8s", "1.0", 1)
	f.canary("k8s", "k8s", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1,
			StepWeight: 10, MaxWeight: 50, Baseline: true}
	})
	f.g.Eventually(func() *metav1.Condition { return f.condition("k8s", sluicev1beta1.StalledCondition) }).Should(And(
		HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", "UnsupportedFeature"),
		HaveField("Message", ContainSubstring("provider kubernetes cannot split traffic three ways (primary, baseline, canary): remove analysis.baseline or use a provider that can (provider kubernetes supports strategies blue-green; capabilities none; providers with baseline: gatewayapi")),
	))
	d := &appsv1.Deployment{}
	f.g.Consistently(func() bool { return apierrors.IsNotFound(f.get(d, "k8s-baseline")) }, 2*time.Second).Should(BeTrue())
}

// blCanary reads a Canary from the API server.
func blCanary(f *fixture, name string) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, name)).To(Succeed())
	return c
}
