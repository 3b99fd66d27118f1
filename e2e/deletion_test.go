//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestDeletion_ServiceKeepsAnswering is scenario 9: a Canary deleted in the
// middle of a rollout hands the traffic back to its target without a single
// failed request: the target is scaled up, the apex Service and the
// HTTPRoute are pointed at it and released, and only then does the primary go.
func TestDeletion_ServiceKeepsAnswering(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	app := newPodinfo(ctx, g, "scenario9")
	ns, key := app.ns, app.key

	// Given a Gateway API Canary of podinfo 1.0.0 under live traffic
	app.deploy(ctx, g, gatewayCanary(app.ns, app.host))
	load := app.serve(ctx, g, 50, 5*time.Minute)
	defer load.Stop()
	start := load.Counts()

	// and a release of 1.1.0 in progress
	app.release(ctx, g, "1.1.0")
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() int32 {
		_ = env.Client.Get(ctx, key, c)
		return c.Status.CanaryWeight
	}, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", 20))

	// When the Canary is deleted
	t.Logf("deleting the Canary at weight %d", c.Status.CanaryWeight)
	g.Expect(env.Client.Delete(ctx, c)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, key, &sluicev1beta1.Canary{}))
	}, 2*time.Minute, 200*time.Millisecond).Should(BeTrue(), "the Canary was not finalized:\n%s", mgr.Tail(4000))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-primary"}, &appsv1.Deployment{}))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue(), "the primary was not garbage-collected")
	mark := load.Counts()
	time.Sleep(5 * time.Second)
	after := load.Counts().Sub(mark)

	// Then every request before, during and after the deletion was answered 2xx,
	all := load.Counts().Sub(start)
	if all.Errors() > 0 { // show where the failures came from
		route := &gatewayv1.HTTPRoute{}
		_ = env.Client.Get(ctx, key, route)
		apex := &corev1.Service{}
		_ = env.Client.Get(ctx, key, apex)
		pods := &corev1.PodList{}
		_ = env.Client.List(ctx, pods, client.InNamespace(ns))
		t.Logf("route: %+v\napex: %+v\nplayed: %v", route.Spec, apex.Spec, env.Pods.Addresses())
		q := `sum by (service, code) (increase(traefik_service_requests_total{service=~".*` + ns + `.*"}[30s]))`
		if resp, err := http.Get(env.Prometheus.URL + "/api/v1/query?query=" + url.QueryEscape(q)); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			t.Logf("traefik by service and code: %s", b)
		}
		for _, p := range pods.Items {
			t.Logf("pod %s labels %v phase %s deleting %v", p.Name, p.Labels, p.Status.Phase, p.DeletionTimestamp != nil)
		}
	}
	t.Logf("during the release and the deletion: %s; after: %s", all, after)
	g.Expect(all.Errors()).To(BeZero(), "requests failed while the Canary went away: %s", all)
	// the target (now 1.1.0) serves everything,
	g.Expect(after.Total).To(BeNumerically(">=", 100))
	g.Expect(after.Share("1.1.0")).To(BeNumerically("==", 1), "after the deletion: %s", after)
	// and the HTTPRoute survives, released from the Canary, on the apex Service.
	route := &gatewayv1.HTTPRoute{}
	g.Expect(env.Client.Get(ctx, key, route)).To(Succeed())
	g.Expect(route.OwnerReferences).To(BeEmpty())
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			g.Expect(string(b.Name)).To(Equal("podinfo"), "the released route still sends to %s", b.Name)
		}
	}
}
