package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

func webYAML(version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:%s
          ports: [{containerPort: 8080}]
`, version)
}

const webCanaryYAML = `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: web
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1s, threshold: 2, iterations: 2}
`

// runWebFromGit serves a repository holding web 1.0 (a Deployment and its
// Canary) from a real Git server, and runs the whole manager bootstrapped
// from it with --git-url into ns; the manager's error arrives on done.
func runWebFromGit(ctx context.Context, t *testing.T, g Gomega, ns string) (*testenv.GitRepo, <-chan error) {
	t.Helper()
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Close)
	repo, err := srv.NewRepo("apps")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Write("web 1.0", map[string]string{"web/deployment.yaml": webYAML("1.0"), "web/canary.yaml": webCanaryYAML})
	g.Expect(err).NotTo(HaveOccurred())

	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElect = false
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	opts.GitURL, opts.GitPath, opts.GitInterval = repo.URL, "web", time.Second
	opts.GitSyncNamespace = ns
	opts.GitCacheDir = t.TempDir()
	g.Expect(opts.Validate()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, env.Config) }()
	return repo, done
}

// TestRun_ACommitStartsACanary: the whole manager, bootstrapped with
// --git-url, deploys an app and its Canary from Git; a commit that changes
// the image starts a canary release (not a rolling update of all traffic),
// which the engine promotes; GitSync leaves the engine's replicas alone.
func TestRun_ACommitStartsACanary(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "release")
	g.Expect(err).NotTo(HaveOccurred())

	// Given a repository with a Deployment and its Canary, and the manager
	// pointed at it with one flag,
	repo, done := runWebFromGit(ctx, t, g, ns)

	get := func(name string) func() (*appsv1.Deployment, error) {
		return func() (*appsv1.Deployment, error) {
			d := &appsv1.Deployment{}
			return d, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d)
		}
	}
	image := func(name string) func() string {
		return func() string {
			d, err := get(name)()
			if err != nil {
				return err.Error()
			}
			return d.Spec.Template.Spec.Containers[0].Image
		}
	}
	phase := func() sluicev1beta1.CanaryPhase {
		c := &sluicev1beta1.Canary{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c); err != nil {
			return sluicev1beta1.CanaryPhase(err.Error())
		}
		return c.Status.Phase
	}
	// then the app is deployed from Git and the engine takes it over.
	g.Eventually(phase, 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	g.Expect(image("web-primary")()).To(Equal("ghcr.io/example/web:1.0"))
	g.Eventually(func() int32 {
		d, err := get("web")()
		if err != nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}, 30*time.Second).Should(BeZero())

	// When a commit changes the image,
	sha, err := repo.Write("web 2.0", map[string]string{"web/deployment.yaml": webYAML("2.0")})
	g.Expect(err).NotTo(HaveOccurred())

	// then GitSync applies it to the canary workload only, the engine runs
	// the analysis, and the primary is promoted to the new version.
	g.Eventually(phase, 30*time.Second, 100*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
	g.Expect(image("web-primary")()).To(Equal("ghcr.io/example/web:1.0"), "the primary changed before the analysis")
	g.Expect(image("web")()).To(Equal("ghcr.io/example/web:2.0"))
	g.Eventually(phase, 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	g.Expect(image("web-primary")()).To(Equal("ghcr.io/example/web:2.0"))

	gs := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultOptions().GitSyncName}, gs)).To(Succeed())
	g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	ready := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Status).To(BeEquivalentTo("True"), ready.Message)
	// The engine's scale-down of the canary workload stands across syncs.
	g.Consistently(func() int32 {
		d, err := get("web")()
		if err != nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}, 3*time.Second, 250*time.Millisecond).Should(BeZero())
	_, err = get("web-primary")()
	g.Expect(apierrors.IsNotFound(err)).To(BeFalse())

	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}
