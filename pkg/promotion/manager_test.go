package promotion_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Run by a manager, as cmd/sluice runs it: the first scan commits to
// staging, and the Canary's verdict (a watch, not a poll: the poll interval
// is an hour) brings the bundle to production.
func TestReconciler_RunsInAManager(t *testing.T) {
	f := newFixture(t)
	g := f.g
	mgr, err := ctrl.NewManager(f.env.Config, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		// Only this test's namespace: the Pipelines of the other tests are
		// driven by hand.
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	r := f.reconciler(nil)
	r.Recorder = nil // the manager's
	r.PollInterval = time.Hour
	r.SkipNameValidation = true
	g.Expect(r.SetupWithManager(f.ctx, mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	digest := f.push("1.1.0")
	start := f.commits()
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Sources[0].Interval = &metav1.Duration{Duration: time.Hour} // no timed reconcile before the verdict
	})
	g.Eventually(func() sluicev1beta1.StageState { return stageOf(f.get(), "staging").State }, 30*time.Second, 200*time.Millisecond).
		Should(Equal(sluicev1beta1.StageCommitted))
	stagingCommit := f.head()
	g.Expect(stageOf(f.get(), "staging").Commit).To(Equal(stagingCommit))
	g.Expect(f.commits()).NotTo(Equal(start))

	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryPromoted, time.Now())
	g.Eventually(func() sluicev1beta1.StageState { return stageOf(f.get(), "production").State }, 30*time.Second, 200*time.Millisecond).
		Should(Equal(sluicev1beta1.StageCommitted))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("digest: " + digest))
	g.Expect(f.git("log", "-1", "--format=%B", "main")).To(ContainSubstring("Sluice-Source-Stage: staging"))
	g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(ContainElement("Committed"))
}
