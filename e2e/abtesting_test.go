//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// abCanary is an A/B test through the stack's Gateway: requests with the
// header x-canary: insider go to the canary for 3 iterations of 5 s.
func abCanary(ns, host string) string {
	return fmt.Sprintf(`
metadata:
  name: podinfo
  namespace: %s
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 120
  service:
    port: %d
    targetPort: %d
    hosts: [%q]
    gatewayRefs: [{name: %s, namespace: %s}]
  analysis:
    interval: 5s
    threshold: 2
    iterations: 3
    match:
      - headers:
          x-canary: {exact: insider}
    metrics:
      - name: request-success-rate
        interval: 15s
        thresholdRange: {min: 99}
`, ns, stack.AppPort, stack.AppPort, host, stack.GatewayName, stack.GatewayNamespace)
}

// TestABTesting_OnlyMatchingRequestsReachTheCanary is scenario 4: during an
// A/B test by header through the Gateway API, every request carrying the
// header is served by the new version and no other request is; then the
// release is promoted and everyone gets it.
func TestABTesting_OnlyMatchingRequestsReachTheCanary(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario4")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given podinfo 1.0.0 behind an A/B Canary, with insiders and everyone else sending requests
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, abCanary(ns, host)))).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)
	insiders, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 20, Duration: 5 * time.Minute,
		Header: http.Header{"X-Canary": []string{"insider"}}})
	g.Expect(err).NotTo(HaveOccurred())
	defer insiders.Stop()
	others, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 30, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer others.Stop()
	g.Eventually(func() int { return others.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 30))

	// When 1.1.0 is released
	v2 := v1
	v2.Version = "1.1.0"
	release(ctx, g, key, v2)

	// Then while it is tested, insiders get 1.1.0 and nobody else does
	var duringIn, duringOut stack.Counts
	var prevIn, prevOut stack.Counts
	progressingSince := time.Time{}
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() sluicev1beta1.CanaryPhase {
		g.Expect(env.Client.Get(ctx, key, c)).To(Succeed())
		in, out := insiders.Counts(), others.Counts()
		// The header route is in place from the first iteration on.
		if c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing && c.Status.Iterations >= 1 {
			if progressingSince.IsZero() {
				progressingSince = time.Now()
			} else if time.Since(progressingSince) > 2*settle {
				duringIn = duringIn.Add(in.Sub(prevIn))
				duringOut = duringOut.Add(out.Sub(prevOut))
			}
		} else {
			progressingSince = time.Time{}
		}
		prevIn, prevOut = in, out
		return c.Status.Phase
	}, 4*time.Minute, 200*time.Millisecond).Should(BeElementOf(sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed))
	t.Logf("while Progressing: insiders %s; others %s", duringIn, duringOut)
	g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", c.Status)
	g.Expect(duringIn.ByVersion["1.1.0"]).To(BeNumerically(">=", 100), "insiders did not reach the canary: %s", duringIn)
	g.Expect(duringIn.Share("1.1.0")).To(BeNumerically("==", 1), "an insider reached the primary: %s", duringIn)
	g.Expect(duringOut.ByVersion["1.0.0"]).To(BeNumerically(">=", 100))
	g.Expect(duringOut.Share("1.0.0")).To(BeNumerically("==", 1), "a request without the header reached the canary: %s", duringOut)
	g.Expect(duringIn.Errors() + duringOut.Errors()).To(BeZero())

	// and after the promotion everyone gets 1.1.0.
	g.Eventually(func() float64 {
		before := others.Counts()
		time.Sleep(2 * time.Second)
		return others.Counts().Sub(before).Share("1.1.0")
	}, 30*time.Second).Should(BeNumerically("==", 1))
}
