package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// flaggerNamespaces prefixes the Flagger fleet's namespaces; Sluice's are
// bench-N, so neither controller ever sees the other's canaries.
const flaggerNamespaces = "flagger"

// runCompareFlagger is -compare-flagger: Sluice first, on the fleet run()
// created, then Flagger on a fresh fleet of the same shape, one controller at
// a time, through the same proxy and metric stand-in. Sluice goes first so
// that its caches (which see every Deployment of the cluster) never hold
// Flagger's objects; Flagger reads Deployments with GETs, not a cache, so
// the Sluice objects left behind cost it nothing.
func (b *bench) runCompareFlagger(ctx context.Context, w io.Writer, admin *rest.Config, s *runtime.Scheme, promURL string, base []string) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	flaggerBin := filepath.Join(root, "bin", "flagger")
	if _, err := os.Stat(flaggerBin); err != nil {
		return fmt.Errorf("flagger is not built (run hack/tools.sh flagger, or make bench-flagger): %w", err)
	}
	r, err := b.runOnce(ctx, "sluice", 0, base, true, "2")
	if err != nil {
		return err
	}
	sl := sluiceSide(b.cfg, b.fleet, r)

	logf("installing Flagger's CRDs (v1.44.0, from its module)")
	if err := installFlaggerCRDs(ctx, b.fleet.c, filepath.Join(root, "bin", "crds", "flagger", "crd.yaml")); err != nil {
		return err
	}
	ff := *b.fleet
	ff.nsPrefix = flaggerNamespaces
	logf("creating %d Flagger canaries in namespaces %s-*", ff.n, flaggerNamespaces)
	if err := ff.createFlagger(ctx, b.cfg.workers); err != nil {
		return err
	}
	fobs, err := startFlaggerObserver(ctx, admin, s)
	if err != nil {
		return err
	}
	fl, err := b.runFlagger(ctx, &ff, fobs, flaggerBin, promURL)
	if fl != nil {
		printComparison(w, b.cfg, b.fleet, sl, *fl)
	}
	return err
}

// runFlagger mirrors runOnce for Flagger: start it with its defaults (client
// QPS 100, burst 250) through the proxy, wait until every canary is
// initialized, count idle requests, release version 2 everywhere, wait for
// every release, stop it.
func (b *bench) runFlagger(ctx context.Context, f *fleet, o *flaggerObserver, bin, promURL string) (*side, error) {
	probe, err := sluiceproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(probe)
	if err != nil {
		return nil, fmt.Errorf("failed to read the probe port: %w", err)
	}
	args := []string{"-kubeconfig=" + b.kubeconfig, "-metrics-server=" + promURL, "-mesh-provider=kubernetes",
		"-port=" + port, "-log-level=info", "-enable-leader-election=false"}
	logf("run \"flagger\": starting flagger %v", args)
	m, err := sluiceproc.StartExternal(ctx, bin, filepath.Join(b.dir, "flagger.log"), "http://"+probe+"/healthz", args)
	if err != nil {
		return nil, err
	}
	sd := &side{name: "Flagger"}
	defer func() {
		if u, err := m.Usage(); err == nil {
			sd.hwm = u.MaxRSS
		}
		m.Stop()
		sd.cpu, sd.maxRSS, sd.split = m.CPU, m.MaxRSS, m.PeakSplit()
		logf("run \"flagger\": flagger stopped (CPU %.1fs, peak RSS %s)", sd.cpu.Seconds(), mib(sd.maxRSS))
	}()
	n := f.n
	if err := o.waitFor(ctx, "every Flagger canary to be initialized", func() bool {
		return m.Exited() || o.count(flaggerInitialized, flaggerSucceeded) == n
	}); err != nil {
		return nil, err
	}
	if m.Exited() {
		return nil, fmt.Errorf("flagger exited: see %s", m.Log)
	}
	logf("run \"flagger\": %d canaries idle; settling %s", n, b.cfg.settle)
	if err := sleep(ctx, b.cfg.settle); err != nil {
		return nil, err
	}
	logf("run \"flagger\": counting idle requests for %s", b.cfg.idle)
	before, u0 := b.proxy.Snapshot(), m.MustUsage()
	t0 := time.Now()
	if err := sleep(ctx, b.cfg.idle); err != nil {
		return nil, err
	}
	sd.idle, sd.idleFor, sd.idleCPU = b.proxy.Snapshot().Sub(before), time.Since(t0), m.MustUsage().CPU-u0.CPU

	logf("run \"flagger\": releasing example.com/app:2 on all %d targets", n)
	o.trace()
	before, u0, q0 := b.proxy.Snapshot(), m.MustUsage(), b.queries.Load()
	sd.released = time.Now()
	if err := f.release(ctx, b.cfg.workers, "2"); err != nil {
		o.finish()
		return nil, err
	}
	last := time.Now()
	err = o.waitFor(ctx, "every Flagger release to finish", func() bool {
		done := o.finished()
		if time.Since(last) > 15*time.Second {
			last = time.Now()
			logf("run \"flagger\": %d/%d releases finished", done, n)
		}
		return done == n || m.Exited()
	})
	if err == nil && m.Exited() {
		err = fmt.Errorf("flagger exited during the releases: see %s", m.Log)
	}
	sd.progressFor = time.Since(sd.released)
	sd.progress = b.proxy.Snapshot().Sub(before)
	sd.progressCPU = m.MustUsage().CPU - u0.CPU
	sd.queries = b.queries.Load() - q0
	sd.tracks = o.finish()
	sd.steps = f.totalSteps()
	logf("run \"flagger\": %d/%d releases finished in %s", o.finished(), n, sd.progressFor.Round(time.Second))
	if err != nil {
		return sd, fmt.Errorf("run \"flagger\": %w", err)
	}
	return sd, nil
}
