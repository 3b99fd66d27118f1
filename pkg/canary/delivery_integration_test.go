package canary_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
)

// conflictOnce makes the first status patch that writes a phase fail with a
// conflict, as when another writer changed the Canary since it was read.
type conflictOnce struct {
	phase sluicev1beta1.CanaryPhase
	mu    sync.Mutex
	n     int
}

func (c *conflictOnce) option() fixtureOption {
	return func(r *canary.CanaryReconciler) { r.Client = conflictingClient{Client: r.Client, c: c} }
}

type conflictingClient struct {
	client.Client
	c *conflictOnce
}

func (cc conflictingClient) Status() client.SubResourceWriter {
	return conflictingStatus{SubResourceWriter: cc.Client.Status(), c: cc.c}
}

type conflictingStatus struct {
	client.SubResourceWriter
	c *conflictOnce
}

func (s conflictingStatus) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	if cn, ok := obj.(*sluicev1beta1.Canary); ok && cn.Status.Phase == s.c.phase {
		s.c.mu.Lock()
		first := s.c.n == 0
		s.c.n++
		s.c.mu.Unlock()
		if first {
			return apierrors.NewConflict(schema.GroupResource{Group: "sluice.dev", Resource: "canaries"}, cn.Name, errors.New("injected by the test"))
		}
	}
	return s.SubResourceWriter.Patch(ctx, obj, p, opts...)
}

func (c *conflictOnce) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// setSource records a Git source for the release under way, as the
// GitSync-annotation reader of the engine does.
func (f *fixture) setSource(name string, commit, applied time.Time) {
	f.t.Helper()
	f.g.Eventually(func() error {
		c := &sluicev1beta1.Canary{}
		if err := f.get(c, name); err != nil {
			return err
		}
		patch := client.MergeFromWithOptions(c.DeepCopy(), client.MergeFromWithOptimisticLock{})
		c.Status.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "apps", GitSyncNamespace: f.ns, Revision: "main@sha1:1234567890abcdef",
			CommitTime: &metav1.Time{Time: commit}, AppliedTime: &metav1.Time{Time: applied}, Release: c.Status.Revision}
		return env.Client.Status().Patch(f.ctx, c, patch)
	}).Should(Succeed())
}

// histogram reads the sample count and sum of a Canary's series of a
// histogram from the manager's metrics registry.
func histogram(name, ns, canaryName string) (count uint64, sum float64, err error) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return 0, 0, err
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["name"] == canaryName {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), nil
			}
		}
	}
	return 0, 0, nil
}

// collected reads the delivery counters a DeliveryCollector exports for a
// namespace, keyed "family{cause}" (cause empty but for rollbacks).
func collected(ns string) (map[string]float64, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(&canary.DeliveryCollector{Reader: env.Client}); err != nil {
		return nil, err
	}
	families, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns {
				out[fam.GetName()+"{"+labels["cause"]+"}"] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// Given a release whose start's status patch conflicts, and an engine that
// stops during the release, a new engine (a restart) continues it and
// promotes it with its status patch conflicting once too: the release is
// started, promoted, and observed once; the counters in status and in the
// collector say 1; the lead time is the promotion time - the commit time,
// within a second.
func TestDelivery_RestartDuringARelease(t *testing.T) {
	t.Parallel()
	started := &conflictOnce{phase: sluicev1beta1.CanaryPhaseProgressing}
	f := newFixture(t, started.option())
	f.deployment("restarted", "1.0", 1)
	f.canary("restarted", "restarted", func(c *sluicev1beta1.Canary) { c.Spec.Analysis.Iterations = 1000 })
	f.waitPhase("restarted", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("restarted", "2.0")
	c := f.waitPhase("restarted", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Expect(started.count()).To(BeNumerically(">=", 2), "the start's patch conflicted, then went through")
	f.g.Expect(c.Status.ReleaseStartTime).NotTo(BeNil())
	f.g.Expect(c.Status.Delivery.ReleasesStarted).To(Equal(int64(1)))

	f.stop() // the engine goes away during the release
	c = &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, "restarted")).To(Succeed())
	f.g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
	f.g.Expect(c.Status.Delivery.Releases).To(HaveLen(1))
	f.g.Expect(c.Status.Delivery.Releases[0].Outcome).To(Equal(sluicev1beta1.DeliveryRunning))
	commit := time.Now().Add(-90 * time.Second).Truncate(time.Second)
	f.setSource("restarted", commit, commit.Add(30*time.Second))

	promoted := &conflictOnce{phase: sluicev1beta1.CanaryPhaseSucceeded}
	f.stop = f.startManager(promoted.option())
	f.annotate("restarted", sluicev1beta1.PromoteAnnotation, "now")
	c = f.waitPhase("restarted", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(promoted.count()).To(BeNumerically(">=", 2), "the promotion's patch conflicted once, then went through")

	d := c.Status.Delivery
	f.g.Expect(d.ReleasesStarted).To(Equal(int64(1)))
	f.g.Expect(d.Promotions).To(Equal(int64(1)))
	f.g.Expect(d.Rollbacks).To(Equal(sluicev1beta1.RollbackCounts{}))
	f.g.Expect(d.Releases).To(HaveLen(1))
	rec := d.Releases[0]
	f.g.Expect(rec.Outcome).To(Equal(sluicev1beta1.DeliveryPromoted))
	f.g.Expect(rec.SourceRevision).To(Equal("main@sha1:1234567890abcdef"))
	f.g.Expect(rec.StartTime).To(Equal(*c.Status.ReleaseStartTime))
	f.g.Expect(rec.EndTime).To(Equal(c.Status.LastTransitionTime), "ended by the transition to Succeeded")
	f.g.Expect(rec.LeadTimeSeconds).NotTo(BeNil())
	want := rec.EndTime.Sub(commit).Seconds()
	f.g.Expect(float64(*rec.LeadTimeSeconds)).To(BeNumerically("~", want, 1), "lead time = promotion time - commit time")

	observed := func(h string) func() (uint64, error) {
		return func() (uint64, error) { n, _, err := histogram(h, f.ns, "restarted"); return n, err }
	}
	f.g.Eventually(observed("sluice_delivery_lead_time_seconds")).Should(Equal(uint64(1)))
	_, sum, err := histogram("sluice_delivery_lead_time_seconds", f.ns, "restarted")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(sum).To(Equal(float64(*rec.LeadTimeSeconds)))
	for _, h := range []string{"sluice_delivery_commit_to_applied_seconds", "sluice_delivery_applied_to_start_seconds", "sluice_delivery_release_duration_seconds"} {
		f.g.Expect(observed(h)()).To(Equal(uint64(1)), h)
	}
	f.g.Expect(observed("sluice_delivery_time_to_restore_seconds")()).To(BeZero())
	exact := And(
		HaveKeyWithValue("sluice_delivery_releases_started_total{}", 1.0),
		HaveKeyWithValue("sluice_delivery_promotions_total{}", 1.0),
		HaveKeyWithValue("sluice_delivery_rollbacks_total{Analysis}", 0.0),
		HaveKeyWithValue("sluice_delivery_rollbacks_total{Aborted}", 0.0),
	)
	f.g.Expect(collected(f.ns)).To(exact)
	// Later reconciles count nothing again.
	f.annotate("restarted", "example.com/touch", "1")
	f.g.Consistently(func() (uint64, error) { return observed("sluice_delivery_lead_time_seconds")() }, 2*time.Second, 200*time.Millisecond).Should(Equal(uint64(1)))
	f.g.Expect(collected(f.ns)).To(exact)
}
