//go:build e2e

package stack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-cd/sluice/e2e/stack"
)

// TestStack_ClusterWithDataPlaneServesItsOwnTraffic checks a second cluster
// started with ClusterOptions.DataPlane: the same app (same namespace, name
// and route) in both clusters answers with each cluster's version through
// each cluster's Traefik; the second cluster's Services are in a loopback
// range of their own; each Prometheus sees only its own cluster's traffic;
// a cluster without a data plane says so instead of sending nowhere.
func TestStack_ClusterWithDataPlaneServesItsOwnTraffic(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Given a running stack and a second cluster with a data plane
	s, err := stack.Start(ctx, stack.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() {
		s.KeepDir = t.Failed()
		s.Stop()
	}()
	second, err := s.StartClusterWith(ctx, "second", stack.ClusterOptions{DataPlane: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second.DataPlane).NotTo(BeNil())
	g.Expect(second.DataPlane.Services.String()).To(Equal("127.97.0.0/16"))
	g.Expect(second.DataPlane.TraefikURL).NotTo(Equal(s.TraefikURL))
	g.Expect(second.DataPlane.Prometheus.URL).NotTo(Equal(s.Prometheus.URL))

	// When the same app and route are created in both clusters, with a
	// version per cluster
	const ns, host = "dual", "dual.example.com"
	apps := map[string]stack.App{
		"first":  {Namespace: ns, Name: "app", Version: "first"},
		"second": {Namespace: ns, Name: "app", Version: "second"},
	}
	for name, cl := range map[string]*stack.Cluster{"first": nil, "second": second} {
		c := s.Client
		if cl != nil {
			c = cl.Client
		}
		app := apps[name]
		g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(c.Create(ctx, app.Deployment())).To(Succeed())
		g.Expect(c.Create(ctx, app.Service())).To(Succeed())
		g.Expect(c.Create(ctx, route(ns, host, "app"))).To(Succeed())
	}
	g.Expect(s.WaitServing(ctx, ns, "app", 30*time.Second)).To(Succeed())
	g.Expect(second.WaitServing(ctx, ns, "app", 30*time.Second)).To(Succeed())

	// Then the second cluster's Service has a ClusterIP in its own range
	svc := &corev1.Service{}
	g.Expect(second.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, svc)).To(Succeed())
	g.Expect(second.DataPlane.Services.Contains(netip.MustParseAddr(svc.Spec.ClusterIP))).To(BeTrue(), svc.Spec.ClusterIP)

	// and each Traefik answers with its own cluster's app only
	first, err := s.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 20, Duration: time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer first.Stop()
	other, err := second.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 20, Duration: time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer other.Stop()
	g.Eventually(func() int { return other.Counts().ByVersion["second"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 20), "the second cluster's Traefik never routed to its pods: %s", second.DataPlane.Traefik.Tail(2048))
	g.Eventually(func() int { return first.Counts().ByVersion["first"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 20), "the stack's Traefik never routed to its pods: %s", s.Traefik.Tail(2048))
	g.Expect(other.Counts().ByVersion).NotTo(HaveKey("first"))
	g.Expect(first.Counts().ByVersion).NotTo(HaveKey("second"))

	// and each cluster's Prometheus counts its own Traefik's requests: the
	// same series names, separate counts
	q := `sum(traefik_service_requests_total{service=~"httproute-` + ns + `-app-.*@kubernetesgateway"})`
	for _, p := range []struct {
		name  string
		query func(context.Context, string) (float64, bool, error)
	}{{"stack", s.Query}, {"second", second.Query}} {
		g.Eventually(func(g Gomega) float64 {
			v, ok, err := p.query(ctx, q)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ok).To(BeTrue())
			return v
		}, 20*time.Second, 500*time.Millisecond).Should(BeNumerically(">=", 20), "%s's Prometheus", p.name)
	}
	first.Stop()
	other.Stop()
	stackTotal, _, err := s.Query(ctx, q)
	g.Expect(err).NotTo(HaveOccurred())
	// (the stack's Prometheus would see at least both loads' requests if it
	// scraped the second Traefik too)
	g.Expect(stackTotal).To(BeNumerically("<=", first.Counts().Total), "the stack's Prometheus counts the second cluster's requests")

	// and a cluster without a data plane refuses load instead of sending
	// nowhere
	plain := &stack.Cluster{Name: "plain"}
	_, err = plain.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 1, Duration: time.Second})
	g.Expect(err).To(MatchError(ContainSubstring("cluster plain has no data plane")))
}

// route sends every request for host to Service name of ns through the
// cluster's Gateway.
func route(ns, host, name string) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name: stack.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(stack.GatewayNamespace)),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules:     []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backend(name, 100)}}},
		},
	}
}
