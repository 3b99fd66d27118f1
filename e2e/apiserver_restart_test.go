//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestAPIServerRestart_RolloutFinishesOnce is scenario 12: kube-apiserver is
// stopped (SIGTERM, then SIGKILL after a grace) in the middle of a release,
// stays down while a step is due, and is started again on the same port
// with the same etcd. Traefik
// keeps serving from its last configuration meanwhile; the manager keeps
// running (its lease outlasts the outage), its writes fail until the server
// is back and its watches reconnect; the release then finishes once, every
// step taken exactly once, in order, and no request fails.
func TestAPIServerRestart_RolloutFinishesOnce(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	app := newPodinfo(ctx, g, "scenario12")

	// Given a manager whose leader lease outlasts an API server restart (a
	// manager whose lease expires exits, and is restarted as in scenario 7):
	// the shared one is stopped, releasing the Lease, for one that renews
	// for 90 s before it gives up
	mgr.Stop(10 * time.Second)
	patient, err := env.StartManager(ctx, "--leader-election-lease-duration=2m",
		"--leader-election-renew-deadline=90s", "--leader-election-retry-period=1s")
	g.Expect(err).NotTo(HaveOccurred())
	defer soleManager(t, patient)
	g.Eventually(func() (bool, error) { return patient.IsLeader(ctx) }, time.Minute, 200*time.Millisecond).Should(BeTrue())

	// and a Gateway API Canary of podinfo 1.0.0 under live traffic, and a
	// release of 1.1.0 that reached its first step
	load, before := app.releasedToFirstStep(ctx, t, g, 7*time.Minute)
	defer load.Stop()

	// When the API server stops (SIGTERM; SIGKILL after 10 s, as a kubelet
	// would: with watches open it stops listening at once but may take a
	// minute to exit)
	restarted := false
	defer func() {
		if !restarted {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = env.StartAPIServer(ctx)
		}
	}()
	down := load.Counts()
	stopped := time.Now()
	graceful, err := env.StopAPIServer(ctx, 10*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("kube-apiserver stopped in %s (exited on SIGTERM: %t)", time.Since(stopped).Round(100*time.Millisecond), graceful)

	// and stays down for at least two analysis intervals, so the next step
	// is due while the manager cannot write
	time.Sleep(time.Until(stopped.Add(10 * time.Second)))
	// (meanwhile Traefik keeps serving from its last configuration)
	outage := load.Counts().Sub(down)
	g.Expect(outage.Total).To(BeNumerically(">", 0), "no answer while the API server was down")
	g.Expect(outage.Errors()).To(BeZero(), "answers while the API server was down: %s; errors: %+v", outage, load.ErrorSamples())

	// and starts again on the same port, with the same etcd
	starting := time.Now()
	g.Expect(env.StartAPIServer(ctx)).To(Succeed())
	restarted = true
	t.Logf("kube-apiserver ready again in %s, %s after it was stopped", time.Since(starting).Round(100*time.Millisecond), time.Since(stopped).Round(100*time.Millisecond))

	// Then the release finishes once: every step of the ladder exactly
	// once, in order
	r := watchRollout(ctx, t, app.key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	app.expectEveryStepOnce(ctx, g, r.final, "1.1.0", 20, 40, 60)

	// and the same manager drove it throughout: it rode the outage out
	ended, exitErr := patient.Exited()
	g.Expect(ended).To(BeFalse(), "the manager exited (%v):\n%s", exitErr, patient.Tail(6000))

	// and no request failed during the whole release, the outage included
	during := load.Counts().Sub(before)
	g.Expect(during.Errors()).To(BeZero(), "answers during the release: %s; errors: %+v", during, load.ErrorSamples())
}
