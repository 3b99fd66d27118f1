package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"
)

// Goals of the "Speed" section.
const (
	goalNoopWrites    = 0
	goalNoopSync      = time.Second
	goalCommitApplied = 2 * time.Second
	goalDrift         = 2 * time.Second
)

// Flux's published figure (fluxcd/flux-benchmark, RESULTS.md): 1,000
// Kustomizations reconciled by kustomize-controller in about 4 min 16 s,
// 175 MiB at most, on a 16-core GitHub runner. It is a reference, not a
// goal: another workload (OCI artifacts of four objects each) on another
// machine.
const (
	fluxDuration = 4*time.Minute + 16*time.Second
	fluxRSS      = "175 MiB"
)

// row is one line of the table.
type row struct{ figure, shape, value, goal, verdict string }

// verdictDur says whether got meets "≤ goal".
func verdictDur(got, goal time.Duration) string {
	if got <= goal {
		return "met"
	}
	return fmt.Sprintf("MISSED by %s (%.1f×)", (got - goal).Round(time.Millisecond), float64(got)/float64(goal))
}

// rows derives the table from the results.
func rows(results []*result) []row {
	out := []row{{
		figure: "first apply (Flux's published figure)", shape: "1,000 Kustomizations",
		value: fmt.Sprintf("%s, peak %s, 16-core runner", fluxDuration, fluxRSS), goal: "reference", verdict: "–",
	}}
	for _, r := range results {
		if r == nil {
			continue
		}
		s := r.shape.label
		if r.firstApplyErr != nil {
			out = append(out, row{"first apply: created → all Ready at the revision", s, "failed: " + r.firstApplyErr.Error(), "(Flux: see above)", "–"})
		} else if r.firstApply > 0 {
			out = append(out, row{"first apply: created → all Ready at the revision", s, secs(r.firstApply), "(Flux: see above)", "–"})
		}
		if r.noopMeasured {
			writes := r.noop.Without(leaseResource).Writes()
			lease := r.noop.Writes() - writes
			v := "met"
			if writes > goalNoopWrites {
				v = fmt.Sprintf("MISSED by %d write%s", writes-goalNoopWrites, plural(writes-goalNoopWrites))
			}
			out = append(out,
				row{"no-op interval: API writes (Lease renewals apart)", s, fmt.Sprintf("%d (+%d Lease) in %s", writes, lease, r.noopFor.Round(time.Second)), fmt.Sprintf("%d", goalNoopWrites), v},
				row{"  dry-run applies / reads", s, fmt.Sprintf("%d / %d", r.noop.DryRuns(), r.noop.Reads()), "", ""},
			)
			h := r.noopSyncs
			if h.count > 0 {
				lo, hi := h.slowest()
				v := "met"
				if hi > goalNoopSync.Seconds() {
					v = fmt.Sprintf("MISSED: slowest in (%s, %s]", fmtBound(lo), fmtBound(hi))
				}
				out = append(out, row{"no-op sync: mean, slowest (histogram bucket)", s,
					fmt.Sprintf("%s, (%s, %s] over %.0f syncs", secs(h.mean()), fmtBound(lo), fmtBound(hi), h.count), "each ≤ " + secs(goalNoopSync), v})
			} else {
				out = append(out, row{"no-op sync: mean, slowest (histogram bucket)", s, "no sync in the window", "each ≤ " + secs(goalNoopSync), "–"})
			}
			out = append(out, row{"  manager CPU in the no-op interval", s, fmt.Sprintf("%.1f s", r.noopCPU.Seconds()), "", ""})
		}
		out = append(out, eventRow("commit → applied (signed GitHub push to the receiver)", s, r.commitApplied, r.commitAppliedErr, goalCommitApplied))
		out = append(out, eventRow("drift → corrected (one ConfigMap edited by hand)", s, r.drift, r.driftErr, goalDrift))
		if r.cpu > 0 || r.peakRSS > 0 {
			out = append(out,
				row{"manager peak RSS", s, mib(r.peakRSS), "(Flux: " + fluxRSS + " for 1,000)", "–"},
				row{"manager CPU, whole run", s, fmt.Sprintf("%.1f s", r.cpu.Seconds()), "", ""},
			)
		}
	}
	return out
}

func eventRow(figure, shape string, d time.Duration, err error, goal time.Duration) row {
	switch {
	case err != nil:
		return row{figure, shape, "not measured: " + err.Error(), "≤ " + secs(goal), "MISSED"}
	case d == 0:
		return row{figure, shape, "not measured", "≤ " + secs(goal), "–"}
	}
	return row{figure, shape, secs(d), "≤ " + secs(goal), verdictDur(d, goal)}
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// printReport writes the table and, after it, the requests of each no-op interval.
func printReport(w io.Writer, c config, results []*result) {
	fmt.Fprintf(w, "\nSluice GitSync benchmark: interval %s, %d CPUs (GOMAXPROCS %d) shared with etcd, kube-apiserver, git http-backend and the benchmark.\n",
		c.interval, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	for _, r := range results {
		if r != nil {
			fmt.Fprintf(w, "Shape %s: %d GitSync%s of %d objects (ConfigMaps, Services, Deployments); load average before %s, after %s.\n",
				r.shape.label, r.shape.n, plural(int64(r.shape.n)), r.shape.k, r.loadBefore, r.loadAfter)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tshape\tvalue\tgoal\tverdict")
	for _, r := range rows(results) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.figure, r.shape, r.value, r.goal, r.verdict)
	}
	_ = tw.Flush()
	for _, r := range results {
		if r == nil || !r.noopMeasured {
			continue
		}
		fmt.Fprintf(w, "\nRequests of the manager in the no-op interval of %s (%s), by verb and resource (total, per GitSync):\n", r.shape.label, r.noopFor.Round(time.Second))
		lines := r.noop.Lines(r.shape.n)
		if len(lines) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
}
