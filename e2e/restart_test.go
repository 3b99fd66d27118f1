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

// TestRestart_RolloutFinishesOnce is scenario 7: the controller is killed
// (SIGKILL, as a crashed pod) in the middle of a rollout and started again;
// the rollout resumes from its status and finishes once, every step taken
// exactly once, in order.
func TestRestart_RolloutFinishesOnce(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	app := newPodinfo(ctx, g, "scenario7")
	key := app.key

	// Given a Gateway API Canary of podinfo 1.0.0 under live traffic
	app.deploy(ctx, g, gatewayCanary(app.ns, app.host))
	load := app.serve(ctx, g, 40, 5*time.Minute)
	defer load.Stop()

	// and a release of 1.1.0 that reached its first step
	app.release(ctx, g, "1.1.0")
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() int32 {
		_ = env.Client.Get(ctx, key, c)
		return c.Status.CanaryWeight
	}, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", 20))
	t.Logf("weight %d: killing sluice (pid %d)", c.Status.CanaryWeight, mgr.PID())

	// When the controller is killed and started again
	g.Expect(mgr.Restart(ctx, true)).To(Succeed())
	t.Logf("sluice restarted (pid %d)", mgr.PID())

	// Then the rollout finishes once: Succeeded, and every weight of the
	// ladder recorded exactly once and in order.
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	// A step held by a failed check records its weight again: collapse
	// consecutive entries, then the ladder must be exactly 20, 40, 60, each
	// step at least an interval (5 s, less a second of slack) after the last,
	// which a step taken twice, or skipped, across the restart breaks.
	var weights []int32
	var times []time.Time
	succeeded := 0
	for _, step := range r.final.Status.History {
		if step.Phase == sluicev1beta1.CanaryPhaseSucceeded {
			succeeded++
		}
		if step.Phase != sluicev1beta1.CanaryPhaseProgressing || step.Weight == 0 {
			continue
		}
		if n := len(weights); n > 0 && weights[n-1] == step.Weight {
			continue
		}
		weights = append(weights, step.Weight)
		times = append(times, step.Time.Time)
	}
	g.Expect(weights).To(Equal([]int32{20, 40, 60}), "steps repeated or skipped: history %+v", r.final.Status.History)
	for i := 1; i < len(times); i++ {
		g.Expect(times[i].Sub(times[i-1])).To(BeNumerically(">=", 4*time.Second),
			"step to %d%% came %s after the previous one: history %+v", weights[i], times[i].Sub(times[i-1]), r.final.Status.History)
	}
	g.Expect(succeeded).To(BeNumerically("<=", 1), "the release finished more than once: %+v", r.final.Status.History)
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: app.ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.1.0"))
}
