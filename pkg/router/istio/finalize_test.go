package istio_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/router"
)

// TestRouter_FinalizeMultiPortTCP checks on the API server that Finalize
// sends every port of a TCP Canary to the apex Service on that port, keeps a
// user's route, releases the VirtualService and leaves the DestinationRules
// owned (they go with the Canary; nothing references them any more).
func TestRouter_FinalizeMultiPortTCP(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := newRouter(t, "istio-finalize")
	c.Spec.Service.AppProtocol = "tcp"
	apexSvc := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: "app"}, apexSvc)).To(Succeed())
	apexSvc.Spec.Ports = append(apexSvc.Spec.Ports, corev1.ServicePort{Name: "admin", Port: 9090})
	g.Expect(env.Client.Update(ctx, apexSvc)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	vs := live(g, c.Namespace, "VirtualService", "app")
	tcp, _, _ := unstructured.NestedSlice(vs.Object, "spec", "tcp")
	g.Expect(tcp).To(HaveLen(2))
	tcp = append(tcp, map[string]any{"match": []any{map[string]any{"port": int64(7000)}},
		"route": []any{map[string]any{"destination": map[string]any{"host": "legacy"}}}})
	g.Expect(unstructured.SetNestedSlice(vs.Object, tcp, "spec", "tcp")).To(Succeed())
	g.Expect(env.Client.Update(ctx, vs)).To(Succeed())

	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	vs = live(g, c.Namespace, "VirtualService", "app")
	g.Expect(router.ControlledBy(vs, c.UID)).To(BeFalse())
	tcp, _, _ = unstructured.NestedSlice(vs.Object, "spec", "tcp")
	var got []any
	for _, r := range tcp {
		got = append(got, r.(map[string]any)["route"])
	}
	g.Expect(got).To(ConsistOf(
		[]any{map[string]any{"destination": map[string]any{"host": "app", "port": map[string]any{"number": int64(80)}}, "weight": int64(100)}},
		[]any{map[string]any{"destination": map[string]any{"host": "app", "port": map[string]any{"number": int64(9090)}}, "weight": int64(100)}},
		[]any{map[string]any{"destination": map[string]any{"host": "legacy"}}},
	))
	for _, name := range []string{"app-primary", "app-canary"} {
		g.Expect(router.ControlledBy(live(g, c.Namespace, "DestinationRule", name), c.UID)).To(BeTrue(), "%s goes with the Canary", name)
	}
}
