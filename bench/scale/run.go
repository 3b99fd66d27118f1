package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
)

// bench holds what every run shares.
type bench struct {
	cfg        config
	fleet      *fleet
	obs        *observer
	proxy      *apicount.Proxy
	queries    *atomic.Int64
	bin        string
	kubeconfig string
	dir        string
}

// result is what one run of the manager measured.
type result struct {
	label string
	limit int

	idleMeasured bool
	idle         counts
	idleFor      time.Duration
	idleCPU      time.Duration
	idleReqs     []write // every request of the idle window, attributed

	progress    counts
	released    time.Time     // when the benchmark began patching the targets
	progressFor time.Duration // release triggered → last canary finished
	progressCPU time.Duration
	queries     int64
	tracks      map[types.NamespacedName]*track
	writes      []write // every write during the releases, attributed
	reads       []write // every read during the releases, attributed
	trails      map[types.NamespacedName][]string

	cpu    time.Duration    // whole life of the process (rusage)
	maxRSS int64            // bytes, rusage ru_maxrss
	hwm    int64            // bytes, VmHWM read before stop
	split  sluiceproc.Split // largest file-backed and anonymous RSS sampled
}

// runOnce starts a manager with args, waits for the canaries to be idle,
// optionally counts idle requests, releases version on every target at
// once, waits for every release to finish and stops the manager.
func (b *bench) runOnce(ctx context.Context, label string, limit int, args []string, measureIdle bool, version string) (*result, error) {
	logf("run %q: starting sluice %v", label, args)
	m, err := sluiceproc.Start(ctx, b.bin, b.kubeconfig, filepath.Join(b.dir, "sluice.log"), args)
	if err != nil {
		return nil, err
	}
	r := &result{label: label, limit: limit}
	defer func() {
		if u, err := m.Usage(); err == nil {
			r.hwm = u.MaxRSS
		}
		m.Stop()
		r.cpu, r.maxRSS, r.split = m.CPU, m.MaxRSS, m.PeakSplit()
		logf("run %q: sluice stopped (CPU %.1fs, peak RSS %s)", label, r.cpu.Seconds(), mib(r.maxRSS))
	}()
	n := b.cfg.n
	idlePhases := []sluicev1beta1.CanaryPhase{sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded}
	if err := b.obs.waitFor(ctx, "every canary to be initialized", func() bool {
		return m.Exited() || b.obs.countPhases(idlePhases...) == n
	}); err != nil {
		return nil, err
	}
	if m.Exited() {
		return nil, fmt.Errorf("sluice exited: see %s", m.Log)
	}
	logf("run %q: %d canaries idle; settling %s", label, n, b.cfg.settle)
	if err := sleep(ctx, b.cfg.settle); err != nil {
		return nil, err
	}
	if measureIdle {
		logf("run %q: counting idle requests for %s", label, b.cfg.idle)
		b.proxy.Record()
		before, u0 := b.proxy.Snapshot(), m.MustUsage()
		t0 := time.Now()
		if err := sleep(ctx, b.cfg.idle); err != nil {
			b.proxy.Recorded()
			return nil, err
		}
		r.idle, r.idleFor, r.idleCPU = b.proxy.Snapshot().Sub(before), time.Since(t0), m.MustUsage().CPU-u0.CPU
		r.idleReqs = b.proxy.Recorded()
		r.idleMeasured = true
	}

	logf("run %q: releasing example.com/app:%s on all %d targets", label, version, n)
	b.obs.trace(version)
	b.proxy.Record()
	before, u0, q0 := b.proxy.Snapshot(), m.MustUsage(), b.queries.Load()
	t0 := time.Now()
	r.released = t0
	if err := b.fleet.release(ctx, b.cfg.workers, version); err != nil {
		b.obs.finish()
		b.proxy.Recorded()
		return nil, err
	}
	last := time.Now()
	err = b.obs.waitFor(ctx, "every release to finish", func() bool {
		done, _ := b.obs.finished()
		if time.Since(last) > 15*time.Second {
			last = time.Now()
			logf("run %q: %d/%d releases finished", label, done, n)
		}
		return done == n || m.Exited()
	})
	if err == nil && m.Exited() {
		err = fmt.Errorf("sluice exited during the releases: see %s", m.Log)
	}
	r.progressFor = time.Since(t0)
	r.progress = b.proxy.Snapshot().Sub(before)
	r.writes, r.reads = splitRecorded(b.proxy.Recorded())
	r.progressCPU = m.MustUsage().CPU - u0.CPU
	r.queries = b.queries.Load() - q0
	r.tracks, r.trails = b.obs.finish()
	if err != nil {
		return r, fmt.Errorf("run %q: %w", label, err)
	}
	_, failed := b.obs.finishedOf(r.tracks)
	logf("run %q: all %d releases finished in %s (%d failed)", label, n, r.progressFor.Round(time.Second), failed)
	return r, nil
}

// finishedOf counts finished and failed tracks.
func (o *observer) finishedOf(tracks map[types.NamespacedName]*track) (done, failed int) {
	for _, t := range tracks {
		if !t.done.IsZero() {
			done++
			if t.failed {
				failed++
			}
		}
	}
	return done, failed
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
