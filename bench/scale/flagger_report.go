package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"

	"k8s.io/apimachinery/pkg/types"
)

// Goals of issue 22 section 1.
const (
	goalIdleFactor    = 100.0 // Sluice makes at least 100× fewer idle requests
	goalReleaseFactor = 2.5   // at N=300 every release finishes 2.5× sooner
	goalReleaseAtN    = 300
)

// side is what one controller measured in the comparison.
type side struct {
	name string

	idle    counts
	idleFor time.Duration
	idleCPU time.Duration

	released    time.Time // the benchmark began patching the targets
	progress    counts
	progressFor time.Duration
	progressCPU time.Duration
	queries     int64
	tracks      map[types.NamespacedName]*track
	steps       int // analysis steps of every release, by the spec
	// engine is, per canary, the release less the time spent waiting for
	// pods (Sluice only: Flagger exposes no step times to derive it from).
	engine map[string]time.Duration

	cpu    time.Duration
	maxRSS int64
	hwm    int64
	split  sluiceproc.Split
}

// totalSteps is the analysis steps of one release of every canary, by the spec.
func (f *fleet) totalSteps() int {
	n := 0
	for i := range f.n {
		n += f.steps(f.provider(i))
	}
	return n
}

// sluiceSide turns a run of the Sluice benchmark into its column.
func sluiceSide(c config, f *fleet, r *result) side {
	s := side{name: "Sluice", idle: r.idle, idleFor: r.idleFor, idleCPU: r.idleCPU, released: r.released,
		progress: r.progress, progressFor: r.progressFor, progressCPU: r.progressCPU, queries: r.queries,
		tracks: r.tracks, steps: f.totalSteps(), engine: map[string]time.Duration{}, cpu: r.cpu, maxRSS: r.maxRSS, hwm: r.hwm, split: r.split}
	for k, t := range r.tracks {
		if t.done.IsZero() || t.start.IsZero() || len(t.steps) == 0 {
			continue
		}
		last := t.steps[len(t.steps)-1]
		wait := max(0, t.targetReady.Sub(t.start.Add(c.interval))) + max(0, t.primaryReady.Sub(last))
		s.engine[k.Name] = t.done.Sub(r.released) - wait
	}
	return s
}

// perCanary is, by canary name, a duration of each finished release:
// noticed (patch → Progressing) or release (patch → Succeeded).
func (s side) perCanary(release bool) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, t := range s.tracks {
		switch {
		case t.start.IsZero():
		case !release:
			out[k.Name] = t.start.Sub(s.released)
		case !t.done.IsZero() && !t.failed:
			out[k.Name] = t.done.Sub(s.released)
		}
	}
	return out
}

func sortedDurations(m map[string]time.Duration) []time.Duration {
	v := make([]time.Duration, 0, len(m))
	for _, d := range m {
		v = append(v, d)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v
}

func (s side) finished() (done, failed int) {
	for _, t := range s.tracks {
		if !t.done.IsZero() {
			done++
			if t.failed {
				failed++
			}
		}
	}
	return done, failed
}

func perSecond(c counts, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(len64(c)) / d.Seconds()
}

func perStep(v int64, steps int) float64 {
	if steps == 0 {
		return 0
	}
	return float64(v) / float64(steps)
}

// ratio formats flagger ÷ sluice: how many times more Flagger needs of a
// thing where less is better.
func ratio(flagger, sluice float64) string {
	switch {
	case flagger == 0 && sluice == 0:
		return "–"
	case sluice == 0:
		return "∞"
	case flagger/sluice >= 100:
		return fmt.Sprintf("%.0f×", flagger/sluice)
	default:
		return fmt.Sprintf("%.2f×", flagger/sluice)
	}
}

// row is one line of the comparison: a figure, both columns and the ratio.
type row struct{ figure, sluice, flagger, ratio string }

func durRow(figure string, s, f time.Duration) row {
	return row{figure, secs(s), secs(f), ratio(f.Seconds(), s.Seconds())}
}

// comparisonRows builds the table of the comparison; pure, so it is tested.
func comparisonRows(s, f side) []row {
	sn, fnot := sortedDurations(s.perCanary(false)), sortedDurations(f.perCanary(false))
	sr, fr := sortedDurations(s.perCanary(true)), sortedDurations(f.perCanary(true))
	se := sortedDurations(s.engine)
	sd, sf := s.finished()
	fd, ff := f.finished()
	sIdle, fIdle := perSecond(s.idle, s.idleFor), perSecond(f.idle, f.idleFor)
	rows := []row{
		{"idle API requests per second", fmt.Sprintf("%.3f", sIdle), fmt.Sprintf("%.3f", fIdle), ratio(fIdle, sIdle)},
		{"API requests per analysis step (releases)", fmt.Sprintf("%.1f", perStep(len64(s.progress), s.steps)),
			fmt.Sprintf("%.1f", perStep(len64(f.progress), f.steps)), ratio(perStep(len64(f.progress), f.steps), perStep(len64(s.progress), s.steps))},
		{"API writes per analysis step (releases)", fmt.Sprintf("%.2f", perStep(s.progress.Writes(), s.steps)),
			fmt.Sprintf("%.2f", perStep(f.progress.Writes(), f.steps)), ratio(perStep(f.progress.Writes(), f.steps), perStep(s.progress.Writes(), s.steps))},
		{"metric queries per analysis step", fmt.Sprintf("%.2f", perStep(s.queries, s.steps)),
			fmt.Sprintf("%.2f", perStep(f.queries, f.steps)), ratio(perStep(f.queries, f.steps), perStep(s.queries, s.steps))},
		durRow("patch → new revision noticed, p50", pctDur(sn, percentile50), pctDur(fnot, percentile50)),
		durRow("patch → new revision noticed, max", pctDur(sn, 1), pctDur(fnot, 1)),
		durRow("release (patch → Succeeded), p50", pctDur(sr, percentile50), pctDur(fr, percentile50)),
		durRow("release (patch → Succeeded), p99", pctDur(sr, pct99), pctDur(fr, pct99)),
		durRow("release (patch → Succeeded), max", pctDur(sr, 1), pctDur(fr, 1)),
		{"release, engine only (less pod waits), p50", secs(pctDur(se, percentile50)), "n/a", ""},
		{"release, engine only (less pod waits), max", secs(pctDur(se, 1)), "n/a", ""},
		{"all releases (patch → last Succeeded)", secs(s.progressFor), secs(f.progressFor), ratio(f.progressFor.Seconds(), s.progressFor.Seconds())},
		{"releases finished / failed", fmt.Sprintf("%d / %d", sd, sf), fmt.Sprintf("%d / %d", fd, ff), ""},
		durRow("CPU, idle window", s.idleCPU, f.idleCPU),
		durRow("CPU, releases", s.progressCPU, f.progressCPU),
		durRow("CPU, whole run", s.cpu, f.cpu),
		{"peak RSS", mib(max(s.maxRSS, s.hwm)), mib(max(f.maxRSS, f.hwm)), ratio(float64(max(f.maxRSS, f.hwm)), float64(max(s.maxRSS, s.hwm)))},
		{"… file-backed / anonymous, each its largest", mib(s.split.File) + " / " + mib(s.split.Anon), mib(f.split.File) + " / " + mib(f.split.Anon), ""},
	}
	return rows
}

// releaseFactor is the smallest, over canaries of the same name (so the
// same provider), of Flagger's release ÷ Sluice's, and how many pairs it
// compared. A release that only one side finished is left out.
func releaseFactor(s, f side) (worst float64, pairs int) {
	sr, fr := s.perCanary(true), f.perCanary(true)
	worst = math.Inf(1)
	for name, sd := range sr {
		fd, ok := fr[name]
		if !ok || sd <= 0 {
			continue
		}
		pairs++
		worst = min(worst, float64(fd)/float64(sd))
	}
	if pairs == 0 {
		return 0, 0
	}
	return worst, pairs
}

// goalLines marks the goals of issue 22 met or missed, and by how much.
func goalLines(n int, s, f side) []string {
	sIdle, fIdle := perSecond(s.idle, s.idleFor), perSecond(f.idle, f.idleFor)
	var out []string
	var idle string
	factor := math.Inf(1)
	if sIdle > 0 {
		factor = fIdle / sIdle
	}
	if factor >= goalIdleFactor {
		idle = "met"
	} else {
		idle = fmt.Sprintf("MISSED by %.1f× (%.1f× fewer)", goalIdleFactor/factor, factor)
	}
	out = append(out, fmt.Sprintf("Sluice makes ≥ %.0f× fewer idle API requests than Flagger: Flagger ÷ Sluice %s → %s", goalIdleFactor, ratio(fIdle, sIdle), idle))
	worst, pairs := releaseFactor(s, f)
	rel := "met"
	if pairs == 0 || worst < goalReleaseFactor {
		rel = fmt.Sprintf("MISSED (the slowest pair is %.2f×, want %.1f×)", worst, goalReleaseFactor)
	}
	where := ""
	if n != goalReleaseAtN {
		where = fmt.Sprintf(" (the goal is stated at N=%d; this run is N=%d)", goalReleaseAtN, n)
	}
	out = append(out, fmt.Sprintf("every release finishes ≥ %.1f× sooner than Flagger's: smallest Flagger ÷ Sluice over %d pairs %.2f× → %s%s",
		goalReleaseFactor, pairs, worst, rel, where))
	return out
}

// printComparison prints the one table of the comparison, then the goals,
// then where each controller's requests went.
func printComparison(w io.Writer, c config, f *fleet, s, fl side) {
	fmt.Fprintf(w, "\nSluice and Flagger v1.44.0 side by side: N=%d canaries each (a quarter each kubernetes, gatewayapi, istio, traefik), interval %s, "+
		"one controller at a time on the same control plane, counting proxy and metric stand-in; %d analysis steps per fleet; idle window %s; %s\n\n",
		c.n, c.interval, f.totalSteps(), c.idle, c.controlPlaneLimits())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tSluice\tFlagger\tFlagger ÷ Sluice")
	for _, r := range comparisonRows(s, fl) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.figure, r.sluice, r.flagger, r.ratio)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, l := range goalLines(c.n, s, fl) {
		fmt.Fprintln(w, "goal: "+l)
	}
	for _, sd := range []side{s, fl} {
		fmt.Fprintf(w, "\n%s idle requests by verb and resource in %s (count, per canary):\n", sd.name, c.idle)
		printLines(w, sd.idle.Lines(c.n))
		fmt.Fprintf(w, "%s requests during the releases (count, per canary):\n", sd.name)
		printLines(w, sd.progress.Lines(c.n))
	}
	fmt.Fprintln(w, strings.Repeat("-", 40))
}
