package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
)

// leaseResource is the leader-election Lease, renewed every retry period
// whatever the number of canaries.
const leaseResource = "leases.coordination.k8s.io"

// Targets of issue 10, the memory one since lowered by issue 22 (section 4)
// from 256 MiB to 192 MiB.
const (
	targetIdleRPS       = 1.0
	targetLateness      = time.Second
	targetDurationRatio = 1.05
	targetWritesPerStep = 3.0
	targetRSS           = 192 << 20
	targetLatenessAtN   = 500
	targetIdleAndRSSAtN = 1000
)

// Percentiles reported.
const percentile50, pct99 = 0.50, 0.99

// stats are the figures of one run derived from the tracks.
type stats struct {
	// lateness of each step against the previous step (or the start) plus
	// the interval; engine lateness counts the first step from when it was
	// due and the canary was ready, whichever came later.
	lateness, engineLate []time.Duration
	// release (start → Succeeded) over interval × steps + drain, analysis
	// (start → last step) over the same; engine ratios leave out the time spent waiting for
	// the canary's pods after the first step was due, and for the promoted
	// primary's pods.
	ratios, analysis, engineRatios []float64
	// podWait is that waiting time; tail is Succeeded − max(last step, primary ready).
	podWait, tail []time.Duration
	// latest is the step with the largest engine lateness, to show whose
	// status changes the report prints.
	latest            lateStep
	steps, unfinished int
	failed, waited    int
	stepMismatch      int // canaries whose number of steps is not the expected one
	// writes of the analysis steps, apart from a release's fixed cost
	sw stepWrites
}

// lateStep is one step of one canary and its engine lateness.
type lateStep struct {
	key  types.NamespacedName
	step int // from 1
	late time.Duration
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func derive(c config, f *fleet, r *result) stats {
	var s stats
	s.sw = attributeSteps(r.writes, r.tracks, c.interval)
	s.unfinished = c.n - len(r.tracks) // never seen changing
	for k, t := range r.tracks {
		if t.waited {
			s.waited++
		}
		prev := t.start
		for i, at := range t.steps {
			late := at.Sub(prev) - c.interval
			s.lateness = append(s.lateness, late)
			if i == 0 && !t.targetReady.IsZero() {
				late = at.Sub(later(prev.Add(c.interval), t.targetReady))
			}
			s.engineLate = append(s.engineLate, late)
			if s.latest.step == 0 || late > s.latest.late {
				s.latest = lateStep{key: k, step: i + 1, late: late}
			}
			prev = at
		}
		s.steps += len(t.steps)
		if t.done.IsZero() || t.start.IsZero() || len(t.steps) == 0 {
			s.unfinished++
			continue
		}
		if t.failed {
			s.failed++
		}
		want := f.steps(t.provider)
		if len(t.steps) != want {
			s.stepMismatch++
		}
		ideal := f.ideal(t.provider)
		last := t.steps[len(t.steps)-1]
		wait := max(0, t.targetReady.Sub(t.start.Add(c.interval))) + max(0, t.primaryReady.Sub(last))
		s.podWait = append(s.podWait, wait)
		s.tail = append(s.tail, t.done.Sub(later(last, t.primaryReady)))
		s.ratios = append(s.ratios, float64(t.done.Sub(t.start))/float64(ideal))
		s.engineRatios = append(s.engineRatios, float64(t.done.Sub(t.start)-wait)/float64(ideal))
		s.analysis = append(s.analysis, float64(last.Sub(t.start))/float64(time.Duration(want)*c.interval))
	}
	for _, v := range [][]time.Duration{s.lateness, s.engineLate, s.podWait, s.tail} {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	}
	for _, v := range [][]float64{s.ratios, s.analysis, s.engineRatios} {
		sort.Float64s(v)
	}
	return s
}

func pctDur(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(math.Ceil(p*float64(len(v))))-1)]
}

func pctF(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[max(0, min(len(v)-1, int(math.Ceil(p*float64(len(v))))-1))]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// verdict says whether got meets a "≤ limit" target and, if not, by how much.
func verdict(got, limit float64, unit string) string {
	if got <= limit {
		return "met"
	}
	if unit == "x" {
		return fmt.Sprintf("MISSED by %.2f× (%.0f%% over)", got/limit, (got/limit-1)*100)
	}
	return fmt.Sprintf("MISSED by %.2f%s (%.1f×)", got-limit, unit, got/limit)
}

// printReport writes the table and, after it, where the requests went.
func printReport(w io.Writer, c config, f *fleet, results []*result) {
	steps := f.steps(sluicev1beta1.ProviderGatewayAPI)
	fmt.Fprintf(w, "\nSluice scale benchmark: N=%d canaries (%d kubernetes blue/green × %d iterations; %d gatewayapi, %d istio, %d traefik stepWeight %d → maxWeight %d), "+
		"interval %s, %d analysis steps per release + %s drain after promotion (ideal release %s), metric request-success-rate from a Prometheus stand-in; "+
		"%d CPUs (GOMAXPROCS %d), shared with the control plane; %s.\n\n",
		c.n, f.count(sluicev1beta1.ProviderKubernetes), c.iterations, f.count(sluicev1beta1.ProviderGatewayAPI),
		f.count(sluicev1beta1.ProviderIstio), f.count(sluicev1beta1.ProviderTraefik), c.stepWeight, c.maxWeight, c.interval, steps, f.drain(), f.ideal(sluicev1beta1.ProviderGatewayAPI), runtime.NumCPU(), runtime.GOMAXPROCS(0), c.controlPlaneLimits())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "measure"
	for _, r := range results {
		header += "\t" + r.label
	}
	fmt.Fprintln(tw, header+"\ttarget\tverdict ("+results[0].label+")")
	row := func(name string, cells []string, target, v string) {
		fmt.Fprintln(tw, name+"\t"+strings.Join(cells, "\t")+"\t"+target+"\t"+v)
	}
	all := make([]stats, len(results))
	for i, r := range results {
		all[i] = derive(c, f, r)
	}
	cells := func(fn func(r *result, s stats) string) []string {
		out := make([]string, len(results))
		for i, r := range results {
			out[i] = fn(r, all[i])
		}
		return out
	}
	r0, s0 := results[0], all[0]

	idleRate := func(r *result) (reads, writes, total, noLease float64) {
		sec := r.idleFor.Seconds()
		return float64(r.idle.Reads()) / sec, float64(r.idle.Writes()) / sec,
			float64(r.idle.Reads()+r.idle.Writes()) / sec, float64(len64(r.idle.Without(leaseResource))) / sec
	}
	row("idle API req/s: reads / writes (total)", cells(func(r *result, _ stats) string {
		if !r.idleMeasured {
			return "–"
		}
		rd, wr, t, _ := idleRate(r)
		return fmt.Sprintf("%.2f / %.2f (%.2f)", rd, wr, t)
	}), fmt.Sprintf("≤ %.0f req/s total (at N=%d)", targetIdleRPS, targetIdleAndRSSAtN), func() string {
		_, _, t, _ := idleRate(r0)
		return verdict(t, targetIdleRPS, " req/s")
	}())
	row("  of which not leader election", cells(func(r *result, _ stats) string {
		if !r.idleMeasured {
			return "–"
		}
		_, _, _, nl := idleRate(r)
		return fmt.Sprintf("%.2f req/s", nl)
	}), "(steady state from caches)", "")
	lateTarget := fmt.Sprintf("p99 ≤ %s (at N=%d)", targetLateness, targetLatenessAtN)
	row("step lateness p50 / p99 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%s / %s / %s", secs(pctDur(s.lateness, percentile50)), secs(pctDur(s.lateness, pct99)), secs(pctDur(s.lateness, 1)))
	}), lateTarget, verdict(pctDur(s0.lateness, pct99).Seconds(), targetLateness.Seconds(), "s"))
	row("  engine only (1st step from max(due, canary pods ready))", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%s / %s / %s", secs(pctDur(s.engineLate, percentile50)), secs(pctDur(s.engineLate, pct99)), secs(pctDur(s.engineLate, 1)))
	}), lateTarget, verdict(pctDur(s0.engineLate, pct99).Seconds(), targetLateness.Seconds(), "s"))
	durTarget := fmt.Sprintf("each ≤ %.2f×", targetDurationRatio)
	row("release start→Succeeded / ideal: p50 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%.2f× / %.2f×", pctF(s.ratios, percentile50), pctF(s.ratios, 1))
	}), durTarget, verdict(pctF(s0.ratios, 1), targetDurationRatio, "x"))
	row("  engine only (less waiting for pods): p50 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%.2f× / %.2f×", pctF(s.engineRatios, percentile50), pctF(s.engineRatios, 1))
	}), durTarget, verdict(pctF(s0.engineRatios, 1), targetDurationRatio, "x"))
	row("  waiting for pods (kcm, scheduler, kwok): p50 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%s / %s", secs(pctDur(s.podWait, percentile50)), secs(pctDur(s.podWait, 1)))
	}), "", "")
	row("  analysis only (start→last step) / ideal: p50 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%.2f× / %.2f×", pctF(s.analysis, percentile50), pctF(s.analysis, 1))
	}), "", "")
	row("  primary ready→Succeeded (incl. drain): p50 / max", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%s / %s", secs(pctDur(s.tail, percentile50)), secs(pctDur(s.tail, 1)))
	}), "", "")
	row("all N finished after (ideal: waves × ideal release)", cells(func(r *result, _ stats) string {
		waves := 1
		if r.limit > 0 {
			waves = (c.n + r.limit - 1) / r.limit
		}
		return fmt.Sprintf("%s (ideal %s)", r.progressFor.Round(100*time.Millisecond), time.Duration(waves)*f.ideal(sluicev1beta1.ProviderGatewayAPI))
	}), "", "")
	perStep := func(r *result, s stats, writes bool) float64 {
		if s.steps == 0 {
			return 0
		}
		n := r.progress.Reads()
		if writes {
			n = r.progress.Writes()
		}
		return float64(n) / float64(s.steps)
	}
	writesTarget := fmt.Sprintf("≤ %.0f", targetWritesPerStep)
	row("API writes per analysis step per canary: mean / max", cells(func(_ *result, s stats) string {
		if len(s.sw.perCanary) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f / %.2f", s.sw.perStep(), pctF(s.sw.perCanary, 1))
	}), writesTarget, verdict(pctF(s0.sw.perCanary, 1), targetWritesPerStep, ""))
	row("  whole release ÷ steps (start, promotion, scale-down, events, Lease)", cells(func(r *result, s stats) string {
		return fmt.Sprintf("%.2f", perStep(r, s, true))
	}), writesTarget, verdict(perStep(r0, s0, true), targetWritesPerStep, ""))
	row("  writes of one release, by canary: p50 / max", cells(func(_ *result, s stats) string {
		if len(s.sw.release) == 0 {
			return "–"
		}
		return fmt.Sprintf("%d / %d", s.sw.release[(len(s.sw.release)-1)/2], s.sw.release[len(s.sw.release)-1])
	}), "", "")
	row("API reads per step per canary", cells(func(r *result, s stats) string {
		return fmt.Sprintf("%.2f", perStep(r, s, false))
	}), "", "")
	row("metric queries per step per canary", cells(func(r *result, s stats) string {
		if s.steps == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", float64(r.queries)/float64(s.steps))
	}), "", "")
	row("controller CPU s: idle window / releases / whole run", cells(func(r *result, _ stats) string {
		idle := "–"
		if r.idleMeasured {
			idle = fmt.Sprintf("%.1f", r.idleCPU.Seconds())
		}
		return fmt.Sprintf("%s / %.1f / %.1f", idle, r.progressCPU.Seconds(), r.cpu.Seconds())
	}), "", "")
	row("controller peak RSS", cells(func(r *result, _ stats) string { return mib(max(r.maxRSS, r.hwm)) }),
		fmt.Sprintf("≤ %d MiB (at N=%d)", targetRSS>>20, targetIdleAndRSSAtN), verdict(float64(max(r0.maxRSS, r0.hwm))/(1<<20), targetRSS/(1<<20), " MiB"))
	row("… file-backed / anonymous, each its largest (sampled every 1 s)", cells(func(r *result, _ stats) string {
		return mib(r.split.File) + " / " + mib(r.split.Anon)
	}), "", "")
	row("releases failed / unfinished / waited for a slot", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%d / %d / %d", s.failed, s.unfinished, s.waited)
	}), "0 / 0", "")
	row("canaries with an unexpected number of steps", cells(func(_ *result, s stats) string {
		return fmt.Sprintf("%d", s.stepMismatch)
	}), "0", "")
	_ = tw.Flush()
	if c.n < targetLatenessAtN {
		fmt.Fprintf(w, "\n(The lateness target is set at N=%d and the idle and memory targets at N=%d; this run has N=%d.)\n", targetLatenessAtN, targetIdleAndRSSAtN, c.n)
	}
	for i, r := range results {
		if r.idleMeasured {
			fmt.Fprintf(w, "\nIdle requests of run %q over %s, by verb and resource (total, per canary):\n", r.label, r.idleFor.Round(time.Second))
			printLines(w, r.idle.Lines(c.n))
		}
		fmt.Fprintf(w, "\nRequests of run %q during the releases (%s), by verb and resource (total, per canary release):\n", r.label, r.progressFor.Round(time.Second))
		printLines(w, r.progress.Lines(c.n))
		printProviders(w, r, c.interval)
		sw := all[i].sw
		fmt.Fprintf(w, "\nWrites of run %q during analysis steps 2 … K−1 (%d steps of %d canaries), by verb and resource (total, per step):\n", r.label, sw.steps, len(sw.perCanary))
		printLines(w, counts(toInt64(sw.byResource)).Lines(sw.steps))
		for _, j := range []int{0, 1} {
			k := f.key(j)
			fmt.Fprintf(w, "\nStatus updates of %s (%s) in run %q, as the benchmark saw them:\n", k, f.provider(j), r.label)
			printLines(w, r.trails[k])
		}
		// The canary with the latest step, whichever it is: where a p99
		// of the lateness comes from.
		if l := all[i].latest; l.step > 0 {
			fmt.Fprintf(w, "\nStatus updates of %s (%s) in run %q, whose step %d was the latest (%s after it was due and its canary ready):\n",
				l.key, r.tracks[l.key].provider, r.label, l.step, secs(l.late))
			printLines(w, r.trails[l.key])
		}
	}
}

func printLines(w io.Writer, lines []string) {
	if len(lines) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}

func toInt64(m map[string]int) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}

func len64(c counts) int64 { return c.Reads() + c.Writes() }

// counts are the proxy's request counts.
type counts = apicount.Counts
