//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

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

	// Given a Gateway API Canary of podinfo 1.0.0 under live traffic, and a
	// release of 1.1.0 that reached its first step
	load, _ := app.releasedToFirstStep(ctx, t, g, 5*time.Minute)
	defer load.Stop()
	t.Logf("killing sluice (pid %d)", mgr.PID())

	// When the controller is killed and started again
	g.Expect(mgr.Restart(ctx, true)).To(Succeed())
	t.Logf("sluice restarted (pid %d)", mgr.PID())

	// Then the rollout finishes once: Succeeded, and every weight of the
	// ladder recorded exactly once and in order.
	r := watchRollout(ctx, t, app.key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	app.expectEveryStepOnce(ctx, g, r.final, "1.1.0", 20, 40, 60)
}
