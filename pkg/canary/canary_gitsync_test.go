package canary_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// startGitSync runs the GitSync reconciler, in a manager of its own, on the
// fixture's namespace.
func (f *fixture) startGitSync() {
	mgr := f.newManager()
	ctx, cancel := context.WithCancel(f.ctx)
	r := &gitsync.GitSyncReconciler{Fetcher: gitsync.NewFetcher(f.t.TempDir()), SkipNameValidation: true}
	f.g.Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("gitsync manager: %v", err)
		}
	}()
	f.t.Cleanup(func() { cancel(); <-done })
}

// shopManifests are a Deployment and its Canary as a GitOps repository holds them.
func shopManifests(image, hookURL string) map[string]string {
	return map[string]string{
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: app
          image: %s
          ports: [{name: http, containerPort: 8080}]
`, image),
		"canary.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: shop}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  service: {port: 80, targetPort: 8080}
  progressDeadlineSeconds: 110
  analysis:
    interval: 1s
    threshold: 2
    iterations: 3
    webhooks:
      - {name: load, type: rollout, url: %q, timeout: 5s}
`, hookURL),
	}
}

// Given a GitSync with wait: true that applies a Deployment and its Canary,
// it is Ready once the Canary is initialized; when a commit brings a
// revision the Canary rolls back, the sync ends failed (HealthCheckFailed,
// naming the Canary) instead of reporting success or waiting out its timeout.
func TestCanary_GitSyncWaitFailsWhenTheCanaryRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.startGitSync()
	srv, err := testenv.StartGitServer("", "", "")
	f.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Close)
	repo, err := srv.NewRepo("shop")
	f.g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Write("v1", shopManifests("example.com/app:1.0", f.hooks.url("/shop-load")))
	f.g.Expect(err).NotTo(HaveOccurred())
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "shop"},
		Spec: sluicev1beta1.GitSyncSpec{URL: repo.URL, Wait: true,
			Interval: &metav1.Duration{Duration: time.Second}, Timeout: &metav1.Duration{Duration: 100 * time.Second}},
	}
	f.g.Expect(env.Client.Create(f.ctx, gs)).To(Succeed())
	synced := func() (*metav1.Condition, error) {
		got := &sluicev1beta1.GitSync{}
		if err := f.get(got, "shop"); err != nil {
			return nil, err
		}
		return meta.FindStatusCondition(got.Status.Conditions, sluicev1beta1.ReadyCondition), nil
	}
	// (A Canary without a status yet reads Current to kstatus, so the first
	// sync may end before the initialization does.)
	f.waitPhase("shop", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(synced).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue)))

	f.hooks.set("/shop-load", http.StatusInternalServerError)
	_, err = repo.Write("v2", shopManifests("example.com/app:2.0", f.hooks.url("/shop-load")))
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Eventually(synced).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", gitsync.ReasonHealthCheckFailed),
		HaveField("Message", And(ContainSubstring("Canary"), ContainSubstring("shop"))),
	))
	f.g.Expect(f.phase("shop")()).To(Equal(sluicev1beta1.CanaryPhaseFailed))
	f.g.Expect(f.image("shop-primary")()).To(Equal("example.com/app:1.0"))
}
