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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

var (
	virtualServiceGVK  = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}
	destinationRuleGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}
)

// split is the weights of a VirtualService's route: primary and canary.
type split struct{ primary, canary int64 }

// vsSplit checks the VirtualService's shape (hosts, mesh gateway, one HTTP
// route to podinfo-primary and podinfo-canary on the service port) and
// returns its weights.
func vsSplit(g Gomega, vs *unstructured.Unstructured) split {
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	g.Expect(hosts).To(ContainElement("podinfo"))
	gateways, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
	g.Expect(gateways).To(Equal([]string{"mesh"}))
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	g.Expect(http).To(HaveLen(1))
	routes, _, _ := unstructured.NestedSlice(http[0].(map[string]any), "route")
	g.Expect(routes).To(HaveLen(2))
	var s split
	for _, r := range routes {
		m := r.(map[string]any)
		host, _, _ := unstructured.NestedString(m, "destination", "host")
		port, _, _ := unstructured.NestedInt64(m, "destination", "port", "number")
		g.Expect(port).To(BeEquivalentTo(stack.AppPort))
		w, _, _ := unstructured.NestedInt64(m, "weight")
		switch host {
		case "podinfo-primary":
			s.primary = w
		case "podinfo-canary":
			s.canary = w
		default:
			g.Expect(host).To(BeElementOf("podinfo-primary", "podinfo-canary"))
		}
	}
	return s
}

// TestIstio_ObjectsFollowTheRollout is scenario 10: with no Envoy here, the
// Istio canary is checked object by object: at every step the
// VirtualService has the expected shape and weights (100/0, 75/25, 50/50,
// then 100/0 on the promoted primary), and the DestinationRules exist.
func TestIstio_ObjectsFollowTheRollout(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario10")
	g.Expect(err).NotTo(HaveOccurred())
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given an Istio Canary of podinfo 1.0.0
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, fmt.Sprintf(`
metadata: {name: podinfo, namespace: %s}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 120
  service: {port: %d, targetPort: %d}
  analysis: {interval: 3s, threshold: 2, stepWeight: 25, maxWeight: 50}
`, ns, stack.AppPort, stack.AppPort)))).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := &unstructured.Unstructured{}
		dr.SetGroupVersionKind(destinationRuleGVK)
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dr)).To(Succeed())
		host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
		g.Expect(host).To(Equal(name))
	}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	g.Expect(env.Client.Get(ctx, key, vs)).To(Succeed())
	g.Expect(vsSplit(g, vs)).To(Equal(split{100, 0}))

	// When 1.1.0 is released
	v2 := v1
	v2.Version = "1.1.0"
	release(ctx, g, key, v2)

	// Then the VirtualService goes through exactly the ladder's weights
	seen := []split{{100, 0}}
	c := &sluicev1beta1.Canary{}
	started := false
	g.Eventually(func() sluicev1beta1.CanaryPhase {
		g.Expect(env.Client.Get(ctx, key, vs)).To(Succeed())
		if s := vsSplit(g, vs); s != seen[len(seen)-1] {
			seen = append(seen, s)
		}
		g.Expect(env.Client.Get(ctx, key, c)).To(Succeed())
		if c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing {
			started = true
		}
		if !started {
			return ""
		}
		return c.Status.Phase
	}, 3*time.Minute, 100*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	t.Logf("VirtualService weights (primary/canary): %v", seen)
	g.Expect(seen).To(Equal([]split{{100, 0}, {75, 25}, {50, 50}, {100, 0}}))
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.1.0"))
}
