//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestPrometheusDown_NeverPromotes is scenario 8: with Prometheus gone
// during the analysis, a perfectly healthy release is not promoted: every
// check errors, and it is rolled back at the threshold. With Prometheus
// back, the next revision is promoted.
func TestPrometheusDown_NeverPromotes(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	app := newPodinfo(ctx, g, "scenario8")
	key := app.key

	// Given a Gateway API Canary of podinfo 1.0.0 under live traffic
	app.deploy(ctx, g, gatewayCanary(app.ns, app.host))
	load := app.serve(ctx, g, 40, 7*time.Minute)
	defer load.Stop()

	// When Prometheus goes down and a healthy 1.1.0 is released
	env.Prometheus.Kill()
	restarted := false
	defer func() {
		if !restarted {
			_ = env.Prometheus.Restart()
		}
	}()
	app.release(ctx, g, "1.1.0")

	// Then it is not promoted: the checks error and it is rolled back,
	r := watchRollout(ctx, t, key, load, 3*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "promoted without metrics: %+v", r.final.Status)
	var outcomes []sluicev1beta1.CheckOutcome
	for _, step := range r.final.Status.History {
		for _, check := range step.Checks {
			if check.Name == "request-success-rate" {
				outcomes = append(outcomes, check.Outcome)
			}
		}
	}
	t.Logf("request-success-rate outcomes: %v", outcomes)
	g.Expect(outcomes).NotTo(BeEmpty())
	g.Expect(outcomes).NotTo(ContainElement(sluicev1beta1.CheckPassed), "a check passed with Prometheus down")
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: app.ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.0.0"))

	// and with Prometheus back, the next revision is promoted.
	g.Expect(env.Prometheus.Restart()).To(Succeed())
	restarted = true
	app.release(ctx, g, "1.2.0")
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseProgressing, time.Minute)
	r = watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: app.ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.2.0"))
}
