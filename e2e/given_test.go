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
	"github.com/sluice-cd/sluice/e2e/stack"
)

// podinfo is one scenario's app: podinfo 1.0.0 (two replicas) in a fresh
// namespace, reached through Traefik at host.
type podinfo struct {
	ns, host string
	key      client.ObjectKey
	v1       stack.App
}

// newPodinfo names podinfo in a fresh namespace prefix-xxxxx.
func newPodinfo(ctx context.Context, g Gomega, prefix string) podinfo {
	ns, err := env.Namespace(ctx, prefix)
	g.Expect(err).NotTo(HaveOccurred())
	return podinfo{
		ns: ns, host: "podinfo." + ns + ".example.com",
		key: client.ObjectKey{Namespace: ns, Name: "podinfo"},
		v1:  stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"},
	}
}

// deploy creates podinfo 1.0.0 and the Canary written as YAML (metadata and
// spec), and waits until the Canary is Initialized.
func (p podinfo) deploy(ctx context.Context, g Gomega, canaryYAML string) {
	g.Expect(env.Client.Create(ctx, p.v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, canaryYAML))).To(Succeed())
	waitPhase(ctx, g, p.key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)
}

// serve sends rps requests a second through Traefik for at most d, and
// waits until 1.0.0 answers them. The caller stops the load.
func (p podinfo) serve(ctx context.Context, g Gomega, rps int, d time.Duration) *stack.Load {
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: p.host, RPS: rps, Duration: d})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", rps), "podinfo does not answer through Traefik: %s", load.Counts())
	return load
}

// release rolls podinfo out at version (image and env), as a new release would.
func (p podinfo) release(ctx context.Context, g Gomega, version string) {
	a := p.v1
	a.Version = version
	release(ctx, g, p.key, a)
}

// reachStep waits until the release has reached a canary weight of at
// least weight, and returns the weight reached.
func (p podinfo) reachStep(ctx context.Context, g Gomega, weight int32) int32 {
	c := &sluicev1beta1.Canary{}
	g.Eventually(func() int32 {
		_ = env.Client.Get(ctx, p.key, c)
		return c.Status.CanaryWeight
	}, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", weight), "status: %+v", c.Status)
	return c.Status.CanaryWeight
}

// expectEveryStepOnce asserts that a release finished once, Succeeded, with
// every weight of ladder recorded exactly once and in order, and podinfo's
// primary on version.
func (p podinfo) expectEveryStepOnce(ctx context.Context, g Gomega, final *sluicev1beta1.Canary, version string, ladder ...int32) {
	g.Expect(final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", final.Status)
	// A step held by a failed check records its weight again: collapse
	// consecutive entries, then the weights must be exactly the ladder, each
	// step at least an interval (5 s, less a second of slack) after the last,
	// which a step taken twice, or skipped, breaks.
	var weights []int32
	var times []time.Time
	succeeded := 0
	history := final.Status.History
	for _, step := range history {
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
	g.Expect(weights).To(Equal(ladder), "steps repeated or skipped: history %+v", history)
	for i := 1; i < len(times); i++ {
		g.Expect(times[i].Sub(times[i-1])).To(BeNumerically(">=", 4*time.Second),
			"step to %d%% came %s after the previous one: history %+v", weights[i], times[i].Sub(times[i-1]), history)
	}
	g.Expect(succeeded).To(BeNumerically("<=", 1), "the release finished more than once: %+v", history)
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":" + version))
}

// releasedToFirstStep is where the failure scenarios (7, 11, 12) strike: a
// Gateway API Canary of podinfo 1.0.0 under 40 requests a second through
// Traefik for at most d, and a release of 1.1.0 that reached its first step
// (20 %). It returns the load, which the caller stops, and its counts just
// before the release.
func (p podinfo) releasedToFirstStep(ctx context.Context, t *testing.T, g Gomega, d time.Duration) (*stack.Load, stack.Counts) {
	p.deploy(ctx, g, gatewayCanary(p.ns, p.host))
	load := p.serve(ctx, g, 40, d)
	before := load.Counts()
	p.release(ctx, g, "1.1.0")
	t.Logf("release of 1.1.0 at canary weight %d", p.reachStep(ctx, g, 20))
	return load, before
}
