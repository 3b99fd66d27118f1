package canary

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The delivery (DORA) metrics of a Canary. Two kinds, chosen so that a
// restart of the controller neither loses nor double-counts a release:
//
//   - the counters (releases started, promotions, rollbacks by cause) are
//     not counted in memory: DeliveryCollector reads them, at every scrape,
//     from status.delivery of the cached Canaries, where the engine writes
//     them with the transition. A restarted controller exports the same
//     values, and one that never saw a release exports it all the same;
//   - the histograms (lead time and its parts, time to restore) are
//     observed once per release, by the reconcile whose status patch ended
//     it, from the release record that patch wrote. A restart during a
//     release leaves the release running in status; the controller that
//     ends it observes it, once.
var (
	deliveryBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800}
	leadTime        = newHistFamily("sluice_delivery_lead_time_seconds",
		"Lead time for changes: from the commit time of the Git revision a GitSync applied to the end of its promotion.",
		deliveryBuckets)
	commitToApplied = newHistFamily("sluice_delivery_commit_to_applied_seconds",
		"Part of the lead time of promoted releases: from the commit time to the GitSync apply.",
		deliveryBuckets)
	appliedToStart = newHistFamily("sluice_delivery_applied_to_start_seconds",
		"Part of the lead time of promoted releases: from the GitSync apply to the start of the release.",
		deliveryBuckets)
	releaseDuration = newHistFamily("sluice_delivery_release_duration_seconds",
		"Part of the lead time of promoted releases: from the start of the release to the end of the promotion.",
		deliveryBuckets)
	timeToRestore = newHistFamily("sluice_delivery_time_to_restore_seconds",
		"Time to restore of rolled back releases: from the first failed check to all traffic back on the primary.",
		deliveryBuckets)
)

// Names of the counters DeliveryCollector exports.
const (
	releasesStartedName = "sluice_delivery_releases_started_total"
	promotionsName      = "sluice_delivery_promotions_total"
	rollbacksName       = "sluice_delivery_rollbacks_total"
)

// DeliveryMetricNames lists the delivery metrics: the histograms, registered
// with the package, and the counters of DeliveryCollector.
var DeliveryMetricNames = []string{
	"sluice_delivery_lead_time_seconds", "sluice_delivery_commit_to_applied_seconds",
	"sluice_delivery_applied_to_start_seconds", "sluice_delivery_release_duration_seconds",
	"sluice_delivery_time_to_restore_seconds", releasesStartedName, promotionsName, rollbacksName,
}

var deliveryHistograms = []*histFamily{leadTime, commitToApplied, appliedToStart, releaseDuration, timeToRestore}

func init() {
	for _, h := range deliveryHistograms {
		ctrlmetrics.Registry.MustRegister(h)
		perCanary = append(perCanary, h)
	}
}

// observeDelivery observes the releases that the status patch just
// committed ended: records that prev held as running (or did not hold) and
// c.Status holds as ended. It also makes the Canary's histogram series
// exist from its first reconcile, at zero, so that Prometheus's increase()
// counts a first release too.
func observeDelivery(prev *sluicev1beta1.CanaryStatus, c *sluicev1beta1.Canary) {
	name, ns := c.Name, c.Namespace
	for _, h := range deliveryHistograms {
		h.touch(name, ns)
	}
	if c.Status.Delivery == nil {
		return
	}
	ended := map[deliveryKey]bool{}
	if prev.Delivery != nil {
		for _, r := range prev.Delivery.Releases {
			ended[keyOf(r)] = r.Outcome != sluicev1beta1.DeliveryRunning
		}
	}
	for _, r := range c.Status.Delivery.Releases {
		if r.Outcome == sluicev1beta1.DeliveryRunning || ended[keyOf(r)] {
			continue
		}
		observeRelease(name, ns, r)
	}
}

// deliveryKey identifies a release record.
type deliveryKey struct {
	revision string
	start    int64
}

func keyOf(r sluicev1beta1.DeliveryRecord) deliveryKey {
	return deliveryKey{revision: r.Revision, start: r.StartTime.Unix()}
}

// observeRelease observes the durations of one ended release.
func observeRelease(name, ns string, r sluicev1beta1.DeliveryRecord) {
	switch r.Outcome {
	case sluicev1beta1.DeliveryPromoted:
		if r.LeadTimeSeconds != nil {
			leadTime.observe(name, ns, float64(*r.LeadTimeSeconds))
		}
		if d, ok := between(r.CommitTime, r.AppliedTime); ok {
			commitToApplied.observe(name, ns, d)
		}
		if d, ok := between(r.AppliedTime, &r.StartTime); ok {
			appliedToStart.observe(name, ns, d)
		}
		if d, ok := between(&r.StartTime, r.EndTime); ok {
			releaseDuration.observe(name, ns, d)
		}
	case sluicev1beta1.DeliveryRolledBack:
		if r.TimeToRestoreSeconds != nil {
			timeToRestore.observe(name, ns, float64(*r.TimeToRestoreSeconds))
		}
	}
}

// between is to - from in whole seconds (status keeps times to the second),
// not below zero (clocks of different hosts); false when either is unknown.
func between(from, to *metav1.Time) (float64, bool) {
	if from == nil || to == nil {
		return 0, false
	}
	return math.Max(0, math.Round(to.Sub(from.Time).Seconds())), true
}

// DeliveryCollector exports the delivery counters of every Canary from its
// status.delivery, read from the manager's cache at each scrape. Every
// replica exports them (the caches run on every replica), with the same
// values: queries aggregate them with max by (namespace, name).
type DeliveryCollector struct {
	// Reader lists the Canaries (the manager's cached client).
	Reader client.Reader
	// Timeout bounds the listing of one scrape; 5 seconds when zero.
	Timeout time.Duration
}

var (
	_ prometheus.Collector = (*DeliveryCollector)(nil)

	releasesStartedDesc = prometheus.NewDesc(releasesStartedName,
		"Releases a Canary started (status.delivery.releasesStarted): the denominator of the change failure rate.",
		[]string{"name", "namespace"}, nil)
	promotionsDesc = prometheus.NewDesc(promotionsName,
		"Releases a Canary promoted (status.delivery.promotions): the deployment frequency.",
		[]string{"name", "namespace"}, nil)
	rollbacksDesc = prometheus.NewDesc(rollbacksName,
		"Releases a Canary rolled back, by cause (Analysis, Aborted, Webhook, ProgressDeadline, PromotionFailed; status.delivery.rollbacks).",
		[]string{"name", "namespace", "cause"}, nil)
)

// Describe implements prometheus.Collector.
func (d *DeliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- releasesStartedDesc
	ch <- promotionsDesc
	ch <- rollbacksDesc
}

// Collect implements prometheus.Collector. Every Canary has every series,
// at zero before its first release, so that increase() counts that one.
func (d *DeliveryCollector) Collect(ch chan<- prometheus.Metric) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	list := &sluicev1beta1.CanaryList{}
	// Read only: the cache's own objects, not a copy of all of them per scrape.
	if err := d.Reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(releasesStartedDesc, err)
		return
	}
	for i := range list.Items {
		c := &list.Items[i]
		dl := c.Status.Delivery
		if dl == nil {
			dl = &sluicev1beta1.DeliveryStatus{}
		}
		ch <- prometheus.MustNewConstMetric(releasesStartedDesc, prometheus.CounterValue, float64(dl.ReleasesStarted), c.Name, c.Namespace)
		ch <- prometheus.MustNewConstMetric(promotionsDesc, prometheus.CounterValue, float64(dl.Promotions), c.Name, c.Namespace)
		r := dl.Rollbacks
		for cause, n := range map[sluicev1beta1.RollbackCause]int64{
			sluicev1beta1.RollbackAnalysis: r.Analysis, sluicev1beta1.RollbackAborted: r.Aborted,
			sluicev1beta1.RollbackWebhook: r.Webhook, sluicev1beta1.RollbackProgressDeadline: r.ProgressDeadline,
			sluicev1beta1.RollbackPromotionFailed: r.PromotionFailed,
		} {
			ch <- prometheus.MustNewConstMetric(rollbacksDesc, prometheus.CounterValue, float64(n), c.Name, c.Namespace, string(cause))
		}
	}
}
