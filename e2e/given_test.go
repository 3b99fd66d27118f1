//go:build e2e

package e2e

import (
	"context"
	"time"

	. "github.com/onsi/gomega"
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
