package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
)

// Shard mode (-shards K, docs/scale.md "Sharding"): the canaries are
// labelled for K shards in turn, and the same initialization and release
// run twice: once under one controller that takes every canary, once under
// K shard processes (--shard-key), each with its own share. It prints each
// process's peak RSS and CPU beside the one controller's.

// shardKey is the shard of canary i when the fleet is split in k.
func shardKey(i, k int) string { return fmt.Sprintf("s%d", i%k) }

// shardUsage is what one process of a shard-mode run used.
type shardUsage struct {
	name   string
	cpu    time.Duration
	maxRSS int64
	split  sluiceproc.Split // largest file-backed and anonymous RSS sampled
}

// shardRun is one shard-mode run: its processes and how long the releases took.
type shardRun struct {
	label     string
	procs     []shardUsage
	releaseIn time.Duration
}

// runProcesses starts one manager per argument list, waits for every
// canary to be initialized, releases version on every target, waits for
// every release to finish and stops the managers.
func (b *bench) runProcesses(ctx context.Context, label string, names []string, args [][]string, version string) (*shardRun, error) {
	run := &shardRun{label: label}
	procs := make([]*sluiceproc.Manager, 0, len(args))
	defer func() {
		for i, m := range procs {
			m.Stop()
			run.procs = append(run.procs, shardUsage{name: names[i], cpu: m.CPU, maxRSS: m.MaxRSS, split: m.PeakSplit()})
			logf("run %q: %s stopped (CPU %.1fs, peak RSS %s)", label, names[i], m.CPU.Seconds(), mib(m.MaxRSS))
		}
	}()
	for i, a := range args {
		logf("run %q: starting %s %v", label, names[i], a)
		m, err := sluiceproc.Start(ctx, b.bin, b.kubeconfig, filepath.Join(b.dir, "sluice-"+names[i]+".log"), a)
		if err != nil {
			return run, err
		}
		procs = append(procs, m)
	}
	exited := func() bool {
		for _, m := range procs {
			if m.Exited() {
				return true
			}
		}
		return false
	}
	n := b.cfg.n
	idle := []sluicev1beta1.CanaryPhase{sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded}
	if err := b.obs.waitFor(ctx, "every canary to be initialized", func() bool {
		return exited() || b.obs.countPhases(idle...) == n
	}); err != nil {
		return run, err
	}
	if exited() {
		return run, fmt.Errorf("run %q: a manager exited: see the logs in %s", label, b.dir)
	}
	if err := sleep(ctx, b.cfg.settle); err != nil {
		return run, err
	}
	logf("run %q: releasing example.com/app:%s on all %d targets", label, version, n)
	b.obs.trace(version)
	t0 := time.Now()
	if err := b.fleet.release(ctx, b.cfg.workers, version); err != nil {
		b.obs.finish()
		return run, err
	}
	err := b.obs.waitFor(ctx, "every release to finish", func() bool {
		done, _ := b.obs.finished()
		return done == n || exited()
	})
	run.releaseIn = time.Since(t0)
	b.obs.finish()
	if err == nil && exited() {
		err = fmt.Errorf("run %q: a manager exited during the releases: see the logs in %s", label, b.dir)
	}
	return run, err
}

// runShardMode runs one controller, then the shards, and prints both.
func (b *bench) runShardMode(ctx context.Context, w io.Writer, base []string) error {
	k := b.cfg.shards
	one, err := b.runProcesses(ctx, "one controller", []string{"all"}, [][]string{base}, "2")
	if err != nil {
		return err
	}
	names := make([]string, k)
	args := make([][]string, k)
	for i := range k {
		names[i] = shardKey(i, k)
		args[i] = append(append([]string{}, base...), "--shard-key="+names[i])
	}
	sharded, err := b.runProcesses(ctx, fmt.Sprintf("%d shards", k), names, args, "3")
	if sharded != nil && len(sharded.procs) == k {
		printShards(w, b.cfg, one, sharded)
	}
	return err
}

// printShards prints each shard's peak RSS and CPU beside the one
// controller's, and the goal: each shard about 1/K of it.
func printShards(w io.Writer, c config, one, sharded *shardRun) {
	all := one.procs[0]
	fmt.Fprintf(w, "\nSharding: %d canaries, one controller vs %d shards (interval %s)\n\n", c.n, c.shards, c.interval)
	fmt.Fprintf(w, "%-16s %-8s %10s %8s %12s %-21s %s\n", "run", "process", "peak RSS", "CPU", "releases in", "RSS vs one controller", "file-backed / anonymous (largest of each)")
	fmt.Fprintf(w, "%-16s %-8s %10s %7.1fs %12s %-21s %s\n", one.label, all.name, mib(all.maxRSS), all.cpu.Seconds(), one.releaseIn.Round(time.Second), "1.00", mib(all.split.File)+" / "+mib(all.split.Anon))
	goal := 1 / float64(c.shards)
	var worst float64
	for _, p := range sharded.procs {
		ratio := float64(p.maxRSS) / float64(max(all.maxRSS, 1))
		worst = max(worst, ratio)
		fmt.Fprintf(w, "%-16s %-8s %10s %7.1fs %12s %-21.2f %s\n", sharded.label, p.name, mib(p.maxRSS), p.cpu.Seconds(), sharded.releaseIn.Round(time.Second), ratio, mib(p.split.File)+" / "+mib(p.split.Anon))
	}
	verdict := "met"
	if worst > goal*1.1 {
		verdict = fmt.Sprintf("missed: the largest shard is %.2f of one controller, %.2f over 1/%d", worst, worst-goal, c.shards)
	}
	fmt.Fprintf(w, "\nGoal: each shard's peak RSS about 1/%d of one controller's (%.2f, +10%%): %s\n", c.shards, goal, verdict)
	fmt.Fprintf(w, "Shards: %s\n", strings.Join(shardNames(sharded), ", "))
}

func shardNames(r *shardRun) []string {
	out := make([]string, 0, len(r.procs))
	for _, p := range r.procs {
		out = append(out, p.name)
	}
	return out
}
