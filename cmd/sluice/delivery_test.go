package main

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestRun_ServesTheDeliveryCounters runs the manager twice in one process
// (as a restart would, and as tests do) and checks the metrics endpoint
// serves the delivery counters of a Canary from its status, read through
// the manager's cache, with the collector of the second manager replacing
// the first's.
func TestRun_ServesTheDeliveryCounters(t *testing.T) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "delivery")
	g.Expect(err).NotTo(HaveOccurred())
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			Suspend:   true, // nothing to release: the status below is the engine's
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Minute}, Threshold: 1, Iterations: 1},
		},
	}
	g.Expect(env.Client.Create(context.Background(), c)).To(Succeed())
	c.Status.Delivery = &sluicev1beta1.DeliveryStatus{ReleasesStarted: 3, Promotions: 2, Rollbacks: sluicev1beta1.RollbackCounts{Aborted: 1}}
	g.Expect(env.Client.Status().Update(context.Background(), c)).To(Succeed())

	for range 2 {
		opts := DefaultOptions()
		opts.skipNameValidation = true
		opts.MetricsAddr = freeAddr(t)
		opts.ProbeAddr = freeAddr(t)
		opts.LeaderElectionNamespace = ns
		opts.GracefulShutdownTimeout = 5 * time.Second
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, opts, env.Config) }()
		g.Eventually(func() (string, error) {
			_, body, err := get("http://" + opts.MetricsAddr + "/metrics")
			return body, err
		}, 30*time.Second, 200*time.Millisecond).Should(And(
			ContainSubstring(`sluice_delivery_releases_started_total{name="web",namespace="`+ns+`"} 3`),
			ContainSubstring(`sluice_delivery_promotions_total{name="web",namespace="`+ns+`"} 2`),
			ContainSubstring(`sluice_delivery_rollbacks_total{cause="Aborted",name="web",namespace="`+ns+`"} 1`),
			ContainSubstring(`sluice_delivery_rollbacks_total{cause="Analysis",name="web",namespace="`+ns+`"} 0`),
		))
		cancel()
		g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
	}
}
