//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// TestFailover_StandbyFinishesTheRollout is scenario 11: two managers share
// the leader Lease; the leader is killed (SIGKILL, as a lost node) in the
// middle of a release; the standby takes the Lease over once it has expired,
// not before, and finishes the release from its status: every step taken
// exactly once, in order, and no request through Traefik fails.
func TestFailover_StandbyFinishesTheRollout(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	app := newPodinfo(ctx, g, "scenario11")

	// Given two managers on one Lease: a leader and a standby
	second, err := env.StartManager(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	defer soleManager(t, second)
	leader, standby := leaderAndStandby(ctx, g, mgr, second)
	t.Logf("leader %s (pid %d), standby %s (pid %d)", leader.Name(), leader.PID(), standby.Name(), standby.PID())

	// and a Gateway API Canary of podinfo 1.0.0 under live traffic, and a
	// release of 1.1.0 that reached its first step
	load, before := app.releasedToFirstStep(ctx, t, g, 7*time.Minute)
	defer load.Stop()

	// When the leader is killed
	t.Logf("killing the leader %s (pid %d)", leader.Name(), leader.PID())
	leader.Kill()
	killed := managerLease(ctx, g)

	// Then the standby takes the Lease over, once it has expired
	g.Eventually(func() (bool, error) { return standby.IsLeader(ctx) }, 2*time.Minute, 200*time.Millisecond).
		Should(BeTrue(), func() string { return "the standby did not take over:\n" + standby.Tail(6000) })
	took := managerLease(ctx, g)
	g.Expect(*took.Spec.HolderIdentity).NotTo(Equal(*killed.Spec.HolderIdentity))
	g.Expect(took.Spec.AcquireTime).NotTo(BeNil(), "the new holder did not record its acquisition: %+v", took.Spec)
	unrenewed := took.Spec.AcquireTime.Sub(killed.Spec.RenewTime.Time)
	t.Logf("the standby took over %s after the leader's last renewal (lease duration %s)", unrenewed, stack.ManagerLeaseDuration)
	g.Expect(unrenewed).To(BeNumerically(">=", stack.ManagerLeaseDuration), "two leaders at once: %+v then %+v", killed.Spec, took.Spec)

	// and finishes the release once: every step of the ladder exactly once,
	// in order
	r := watchRollout(ctx, t, app.key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	app.expectEveryStepOnce(ctx, g, r.final, "1.1.0", 20, 40, 60)

	// and no request failed during the whole release, the failover included
	during := load.Counts().Sub(before)
	g.Expect(during.Errors()).To(BeZero(), "answers during the release: %s; errors: %+v", during, load.ErrorSamples())
}

// leaderAndStandby waits until exactly one of two managers leads, and
// returns it first.
func leaderAndStandby(ctx context.Context, g Gomega, a, b *stack.Manager) (leader, standby *stack.Manager) {
	g.Eventually(func(g Gomega) {
		la, err := a.IsLeader(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		lb, err := b.IsLeader(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(la).NotTo(Equal(lb), "%s leads: %t, %s leads: %t", a.Name(), la, b.Name(), lb)
		leader, standby = a, b
		if lb {
			leader, standby = b, a
		}
	}, time.Minute, 200*time.Millisecond).Should(Succeed())
	return leader, standby
}

// managerLease reads the managers' leader election Lease.
func managerLease(ctx context.Context, g Gomega) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: stack.ManagerNamespace, Name: stack.ManagerLease}, l)).To(Succeed())
	g.Expect(l.Spec.HolderIdentity).NotTo(BeNil(), "the Lease has no holder: %+v", l.Spec)
	g.Expect(l.Spec.RenewTime).NotTo(BeNil(), "the Lease was never renewed: %+v", l.Spec)
	return l
}

// soleManager leaves the shared manager mgr as the only one, leading, for
// the next scenarios: started again if it was stopped or killed, other
// stopped (SIGTERM, which releases the Lease), then mgr leads.
func soleManager(t *testing.T, other *stack.Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if ended, _ := mgr.Exited(); ended {
		if err := mgr.Restart(ctx, false); err != nil {
			t.Errorf("failed to start the shared manager again: %v", err)
			return
		}
	}
	other.Stop(10 * time.Second)
	g := NewWithT(t)
	g.Eventually(func() (bool, error) { return mgr.IsLeader(ctx) }, time.Minute, 200*time.Millisecond).
		Should(BeTrue(), func() string { return "the shared manager does not lead again:\n" + mgr.Tail(4000) })
}
