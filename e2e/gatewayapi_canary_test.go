//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// gatewayCanary is a Canary of the Deployment podinfo through the stack's
// Gateway, analysed every 5 s with the builtin request-success-rate, moving
// 20 % at a time up to 60 %.
func gatewayCanary(ns, host string) string {
	return fmt.Sprintf(`
metadata:
  name: podinfo
  namespace: %s
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 120
  service:
    port: %d
    targetPort: %d
    hosts: [%q]
    gatewayRefs:
      - name: %s
        namespace: %s
  analysis:
    interval: 5s
    threshold: 2
    stepWeight: 20
    maxWeight: 60
    metrics:
      - name: request-success-rate
        interval: 15s
        thresholdRange:
          min: 99
`, ns, stack.AppPort, stack.AppPort, host, stack.GatewayName, stack.GatewayNamespace)
}

// TestGatewayAPICanary_PromotesHealthyRelease is scenario 1: a release with
// no errors, driven through the Gateway API with real traffic, is promoted
// step by step; the traffic observed at each step follows the canary weight;
// the primary ends on the new version.
func TestGatewayAPICanary_PromotesHealthyRelease(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario1")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given podinfo 1.0.0 (two replicas) behind a Gateway API Canary
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, gatewayCanary(ns, host)))).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)

	// and 40 requests a second through Traefik, all answered by 1.0.0
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "the primary does not answer through Traefik: %s", load.Counts())
	before := load.Counts()
	g.Expect(before.ByVersion).To(HaveLen(1), "only 1.0.0 answers before the release: %s", before)

	// When the Deployment is updated to 1.1.0 (image and env)
	v2 := v1
	v2.Version = "1.1.0"
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, key, d)).To(Succeed())
	v2.Release(d)
	g.Expect(env.Client.Update(ctx, d)).To(Succeed())

	// Then the Canary goes Progressing and ends Succeeded
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic observed while Progressing:%s", r.phases, describeSplits(r))
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	g.Expect(r.phases).To(ContainElements(sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseSucceeded))

	// and at every step the observed split followed the canary weight
	checked := expectSplitFollowsWeights(g, r, "1.1.0", 40, 0.1)
	g.Expect(checked).To(ContainElements(int32(20), int32(40)), "too little traffic was observed at the steps:%s", describeSplits(r))

	// and the analysis measured the canary's success rate from Traefik's metrics
	rates := metricValues(r.final, sluicev1beta1.MetricRequestSuccessRate)
	g.Expect(rates).NotTo(BeEmpty(), "no request-success-rate was measured: %+v", r.final.Status.History)
	for _, v := range rates {
		f, err := strconv.ParseFloat(v, 64)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f).To(BeNumerically(">=", 99), "measured success rates %v", rates)
	}

	// and no request failed while the release progressed
	g.Expect(r.progressing.Errors()).To(BeZero(), "answers while Progressing: %s; errors: %+v", r.progressing, r.errorsSince(load))

	// and the primary now serves 1.1.0 only
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-primary"}, d)).To(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Env).To(ContainElement(HaveField("Value", "1.1.0")))
	g.Eventually(func() string {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		window := load.Counts().Sub(before)
		if window.Total < 40 || window.ByWorkload["podinfo-primary 1.1.0"] != window.Total {
			return window.String()
		}
		return "primary 1.1.0 only"
	}, 20*time.Second).Should(Equal("primary 1.1.0 only"))

	// and no request failed during the whole release, the switch of all
	// traffic back to the primary included
	g.Expect(r.total.Errors()).To(BeZero(), "answers during the release: %s; errors: %+v", r.total, r.errorsSince(load))
}
