//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// traefikCanary is a Canary on Traefik's own CRDs: Sluice writes the
// TraefikService podinfo that the user's IngressRoute sends to; the
// builtin request-duration (p99, ms) must stay under 100.
func traefikCanary(ns string) string {
	return fmt.Sprintf(`
metadata:
  name: podinfo
  namespace: %s
spec:
  provider: traefik
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 120
  service:
    port: %d
    targetPort: %d
  analysis:
    interval: 5s
    threshold: 2
    stepWeight: 20
    maxWeight: 60
    metrics:
      - name: request-duration
        interval: 15s
        thresholdRange: {max: 100}
`, ns, stack.AppPort, stack.AppPort)
}

// ingressRoute is the user's IngressRoute: host → the TraefikService podinfo.
func ingressRoute(g Gomega, ns, host string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(fmt.Sprintf(`
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: podinfo, namespace: %s}
spec:
  entryPoints: [web]
  routes:
    - match: Host(%s)
      kind: Rule
      services:
        - {name: podinfo, kind: TraefikService}
`, ns, "`"+host+"`")), &u.Object)).To(Succeed())
	return u
}

// TestTraefikService_LatencyRegressionRolledBack is scenario 3: through a
// TraefikService, a release that answers in 250 ms instead of 5 ms is
// caught by request-duration and rolled back; the primary keeps 1.0.0.
func TestTraefikService_LatencyRegressionRolledBack(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario3")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given podinfo 1.0.0 (5 ms) behind a Traefik Canary and an IngressRoute, under load
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0", LatencyMS: 5}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, traefikCanary(ns)))).To(Succeed())
	g.Expect(env.Client.Create(ctx, ingressRoute(g, ns, host))).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "podinfo does not answer through the IngressRoute: %s", load.Counts())

	// When 1.1.0 answers in 250 ms
	v2 := v1
	v2.Version, v2.LatencyMS = "1.1.0", 250
	release(ctx, g, key, v2)

	// Then request-duration fails it at the threshold and it is rolled back
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic while Progressing:%s", r.phases, describeSplits(r))
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "status: %+v", r.final.Status)
	durations := metricValues(r.final, "request-duration")
	g.Expect(durations).NotTo(BeEmpty())
	t.Logf("measured p99 (ms): %v", durations)
	var slow float64
	_, err = fmt.Sscanf(durations[len(durations)-1], "%g", &slow)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(slow).To(BeNumerically(">", 100), "the last measured p99 should be the regression")
	g.Expect(r.progressing.ByVersion["1.1.0"]).To(BeNumerically(">", 0), "the canary never got traffic")
	checked := expectSplitFollowsWeights(g, r, "1.1.0", 40, 0.1)
	t.Logf("split checked at weights %v", checked)

	// and the primary still serves 1.0.0 to everyone.
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.0.0"))
	g.Eventually(func() float64 {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		return load.Counts().Sub(before).Share("1.0.0")
	}, 30*time.Second).Should(BeNumerically("==", 1))
}
