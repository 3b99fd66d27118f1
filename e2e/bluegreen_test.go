//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// TestBlueGreen_PromotedWhenTheGateOpens is scenario 5: blue/green with the
// kubernetes provider (the user's HTTPRoute sends to the apex Service,
// which Sluice switches), held at the end of the analysis by the load
// tester's confirm-promotion gate; a release manager opens the gate with
// the load tester's API mid-run and the release is promoted at once.
func TestBlueGreen_PromotedWhenTheGateOpens(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario5")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given the load tester, which Sluice calls with signed requests and a
	// release manager with a token,
	const hmacKey, token = "e2e-signing-key-0123456789", "release-manager-token-0123456789"
	lt, err := env.StartLoadTester(ctx,
		stack.LoadTesterClient{Name: "sluice", HMACKey: hmacKey, Namespaces: []string{ns}},
		stack.LoadTesterClient{Name: "release-manager", Token: token, Namespaces: []string{ns}, Scopes: []string{"check", "operate"}})
	g.Expect(err).NotTo(HaveOccurred())
	defer lt.Stop(5 * time.Second)
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "loadtester-hmac"},
		Data:       map[string][]byte{"key": []byte(hmacKey)},
	})).To(Succeed())

	// and podinfo 1.0.0 behind a blue/green Canary gated on confirm-promotion,
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, fmt.Sprintf(`
metadata: {name: podinfo, namespace: %s}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 120
  service: {port: %d, targetPort: %d}
  analysis:
    interval: 3s
    threshold: 2
    iterations: 2
    webhooks:
      - name: release-manager-approval
        type: confirm-promotion
        url: %s/gate/check
        secretRef: {name: loadtester-hmac}
`, ns, stack.AppPort, stack.AppPort, lt.URL)))).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)

	// reached through Traefik by the user's own HTTPRoute to the apex Service.
	g.Expect(env.Client.Create(ctx, &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo-ingress"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name: stack.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(stack.GatewayNamespace)),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "podinfo", Port: ptr.To(gatewayv1.PortNumber(stack.AppPort))},
			}}}}},
		},
	})).To(Succeed())
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "podinfo does not answer through Traefik: %s", load.Counts())
	start := load.Counts() // Traefik answers 404 until it has read the new HTTPRoute

	// When 1.1.0 is released,
	v2 := v1
	v2.Version = "1.1.0"
	release(ctx, g, key, v2)

	// Then after its iterations it waits for the gate, users still on 1.0.0,
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseWaitingPromotion, 2*time.Minute)
	before := load.Counts()
	g.Consistently(func() sluicev1beta1.CanaryPhase {
		c := &sluicev1beta1.Canary{}
		_ = env.Client.Get(ctx, key, c)
		return c.Status.Phase
	}, 6*time.Second, 250*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseWaitingPromotion), "promoted with the gate closed")
	held := load.Counts().Sub(before)
	g.Expect(held.Share("1.0.0")).To(BeNumerically("==", 1), "users reached 1.1.0 before the promotion: %s", held)
	g.Expect(held.Errors()).To(BeZero())

	// a caller without a valid token cannot open it;
	code, err := lt.Call(ctx, "/gate/open", "wrong-token-0123456789abcdef", ns, "podinfo")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusUnauthorized))

	// when the release manager opens the gate, it is promoted, and everyone gets 1.1.0.
	code, err = lt.Call(ctx, "/gate/open", token, ns, "podinfo")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusAccepted))
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
	g.Eventually(func() float64 {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		return load.Counts().Sub(before).Share("1.1.0")
	}, 30*time.Second).Should(BeNumerically("==", 1))
	all := load.Counts().Sub(start)
	g.Expect(all.Errors()).To(BeZero(), "requests failed during the blue/green switch: %s", all)
}
