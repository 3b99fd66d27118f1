package canary

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The per-Canary gauges and histograms are kept here in one small record
// per Canary and turned into series when the endpoint is scraped, instead
// of in client_golang's vectors. A vector keeps a Gauge or Histogram
// object with its own copy of the label pairs for every series: about
// 400 bytes per gauge and 900 per histogram, 15 KiB per Canary with its 30
// gauges and 6 histograms, 15 MiB of live heap at 1,000 Canaries, twice
// that in RSS (docs/scale.md "Memory"). The series exposed are the same,
// with the same names, labels, types and values.

// canaryKey identifies a Canary's series.
type canaryKey struct{ namespace, name string }

// canaryGauges is what the gauges of one Canary say, taken from the
// status its reconciler has just written.
type canaryGauges struct {
	phase                                      sluicev1beta1.CanaryPhase
	weight, failedChecks, threshold, fgrStatus float64
	// target is spec.targetRef.name (flagger_canary_weight's workload).
	target string
	// metrics are the metrics of the spec and of the last measuring step,
	// sorted by name.
	metrics []metricGauges
	// seq orders the records by when they were set (see gaugeFamily.shared).
	seq uint64
}

// metricGauges are the gauges of one analysis metric. NaN is no series.
type metricGauges struct {
	name string
	// measured: the last measuring step checked it, with outcome.
	measured bool
	outcome  sluicev1beta1.CheckOutcome
	value    float64
	min, max float64
}

// gauges holds the canaryGauges of every Canary with series.
var gauges = struct {
	sync.RWMutex
	m   map[canaryKey]*canaryGauges
	seq uint64
}{m: map[canaryKey]*canaryGauges{}}

// setGauges replaces the gauges of a Canary; it reports whether the Canary
// had none before.
func setGauges(k canaryKey, g *canaryGauges) (first bool) {
	sort.Slice(g.metrics, func(i, j int) bool { return g.metrics[i].name < g.metrics[j].name })
	gauges.Lock()
	defer gauges.Unlock()
	_, seen := gauges.m[k]
	gauges.seq++
	g.seq = gauges.seq
	gauges.m[k] = g
	return !seen
}

// deleteGauges forgets the gauges of a Canary; it reports whether it had any.
func deleteGauges(k canaryKey) bool {
	gauges.Lock()
	defer gauges.Unlock()
	_, seen := gauges.m[k]
	delete(gauges.m, k)
	return seen
}

// namespaceHasGauges tells whether any Canary of the namespace has gauges.
func namespaceHasGauges(ns string) bool {
	gauges.RLock()
	defer gauges.RUnlock()
	for k := range gauges.m {
		if k.namespace == ns {
			return true
		}
	}
	return false
}

// gaugeFamily is one gauge metric of the Canaries: a collector that emits,
// for every Canary, the series emit derives from its canaryGauges.
type gaugeFamily struct {
	desc *prometheus.Desc
	emit func(k canaryKey, g *canaryGauges, series func(v float64, labels ...string))
	// shared: the labels do not name the Canary (flagger_canary_weight's
	// workload is its target), so two Canaries may give the same series.
	// The one set last is exposed, as a vector's last Set would be.
	shared bool
}

func newGaugeFamily(name, help string, labels []string,
	emit func(k canaryKey, g *canaryGauges, series func(v float64, labels ...string))) *gaugeFamily {
	return &gaugeFamily{desc: prometheus.NewDesc(name, help, labels, nil), emit: emit}
}

// Describe implements prometheus.Collector.
func (f *gaugeFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector.
func (f *gaugeFamily) Collect(ch chan<- prometheus.Metric) {
	gauges.RLock()
	defer gauges.RUnlock()
	if !f.shared {
		for k, g := range gauges.m {
			f.emit(k, g, func(v float64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v, labels...)
			})
		}
		return
	}
	type last struct {
		seq    uint64
		v      float64
		labels []string
	}
	series := map[string]last{}
	for k, g := range gauges.m {
		f.emit(k, g, func(v float64, labels ...string) {
			id := strings.Join(labels, "\xff")
			if prev, ok := series[id]; !ok || prev.seq < g.seq {
				series[id] = last{seq: g.seq, v: v, labels: labels}
			}
		})
	}
	for _, s := range series {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, s.v, s.labels...)
	}
}

// histFamily is one histogram metric with the labels name and namespace,
// one series per Canary, kept as bucket counts only.
type histFamily struct {
	desc    *prometheus.Desc
	buckets []float64

	mu sync.Mutex
	// m holds the series; a nil *compactHist is a series that exists at
	// zero (nothing observed yet), which costs no counts.
	m map[canaryKey]*compactHist
}

// compactHist is one histogram series: non-cumulative counts per bucket
// (the last one is +Inf), their sum and the sum of the observations.
type compactHist struct {
	counts []uint64
	count  uint64
	sum    float64
}

func newHistFamily(name, help string, buckets []float64) *histFamily {
	return &histFamily{
		desc:    prometheus.NewDesc(name, help, []string{"name", "namespace"}, nil),
		buckets: buckets,
		m:       map[canaryKey]*compactHist{},
	}
}

// touch makes the Canary's series exist, at zero if nothing was observed.
func (h *histFamily) touch(name, ns string) {
	k := canaryKey{namespace: ns, name: name}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[k]; !ok {
		h.m[k] = nil
	}
}

// observe adds one observation to the Canary's series.
func (h *histFamily) observe(name, ns string, v float64) {
	k := canaryKey{namespace: ns, name: name}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.m[k]
	if s == nil {
		s = &compactHist{counts: make([]uint64, len(h.buckets)+1)}
		h.m[k] = s
	}
	// The first bucket whose upper bound is >= v, as client_golang counts.
	s.counts[sort.SearchFloat64s(h.buckets, v)]++
	s.count++
	s.sum += v
}

// DeletePartialMatch deletes the series matching the labels (name and
// namespace, either may be left out), as a vector's does.
func (h *histFamily) DeletePartialMatch(l prometheus.Labels) int {
	name, byName := l["name"]
	ns, byNamespace := l["namespace"]
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k := range h.m {
		if (!byName || k.name == name) && (!byNamespace || k.namespace == ns) {
			delete(h.m, k)
			n++
		}
	}
	return n
}

// Describe implements prometheus.Collector.
func (h *histFamily) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector.
func (h *histFamily) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, s := range h.m {
		cumulative := make(map[float64]uint64, len(h.buckets))
		var count uint64
		var sum float64
		if s != nil {
			count, sum = s.count, s.sum
		}
		var running uint64
		for i, b := range h.buckets {
			if s != nil {
				running += s.counts[i]
			}
			cumulative[b] = running
		}
		ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, cumulative, k.name, k.namespace)
	}
}
