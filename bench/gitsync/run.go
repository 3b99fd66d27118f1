package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/bench/internal/apicount"
	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// leaseResource is the leader-election Lease, renewed every retry period
// whatever GitSync does: not counted against the no-op goal.
const leaseResource = "leases.coordination.k8s.io"

// shape is one workload: n GitSyncs of k objects each.
type shape struct {
	label  string
	prefix string
	n, k   int
}

// result is what one shape measured. A figure not measured (an earlier
// step failed) has its error set instead.
type result struct {
	shape shape

	firstApply    time.Duration
	firstApplyErr error

	noopMeasured bool
	noop         apicount.Counts
	noopFor      time.Duration
	noopCPU      time.Duration
	noopSyncs    histogram

	commitApplied    time.Duration
	commitAppliedErr error

	drift    time.Duration
	driftErr error

	cpu     time.Duration // whole life of the manager (rusage)
	peakRSS int64         // bytes: max of VmHWM before the stop and ru_maxrss

	loadBefore, loadAfter string // /proc/loadavg
}

// runShape measures one shape on its own control plane, Git server and
// manager, so that the shapes do not see each other's objects.
func runShape(ctx context.Context, c config, s shape, bin, dir string) (r *result, err error) {
	r = &result{shape: s, loadBefore: loadavg()}
	defer func() { r.loadAfter = loadavg() }()
	logf("%s: starting etcd and kube-apiserver", s.label)
	sch := scheme()
	env, err := testenv.Start(sch, testenv.WithServiceCIDR("10.96.0.0/16"))
	if err != nil {
		return r, err
	}
	defer func() {
		logf("%s: stopping the control plane", s.label)
		_ = env.Stop()
	}()
	// The observer's watch ends with the shape, before its API server stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	admin := rest.CopyConfig(env.Config)
	admin.QPS, admin.Burst = 1000, 2000
	cl, err := client.New(admin, client.Options{Scheme: sch})
	if err != nil {
		return r, err
	}
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return r, err
	}
	git, err := testenv.StartGitServer(filepath.Join(dir, s.prefix+"-git"), "", "")
	if err != nil {
		return r, err
	}
	defer git.Close()
	repo, err := git.NewRepo("fleet")
	if err != nil {
		return r, err
	}
	token := make([]byte, 32)
	_, _ = rand.Read(token)
	f := &fleet{prefix: s.prefix, n: s.n, k: s.k, interval: c.interval, repo: repo, token: token}
	logf("%s: committing %d objects", s.label, s.n*s.k)
	sha0, err := f.write()
	if err != nil {
		return r, err
	}
	if err := f.createNamespaces(ctx, cl, c.workers); err != nil {
		return r, err
	}
	obs, err := startObserver(ctx, admin, sch)
	if err != nil {
		return r, err
	}
	proxy, err := apicount.Start(env.Config, apicount.Options{Logf: logf})
	if err != nil {
		return r, err
	}
	defer proxy.Stop()
	kubeconfig := filepath.Join(dir, s.prefix+".kubeconfig")
	if err := proxy.WriteKubeconfig(kubeconfig); err != nil {
		return r, err
	}
	recvAddr, err := sluiceproc.FreeAddr()
	if err != nil {
		return r, err
	}
	metricsAddr, err := sluiceproc.FreeAddr()
	if err != nil {
		return r, err
	}
	args := []string{
		"--leader-election-namespace=sluice-system", "--log-encoding=json",
		"--git-receiver-address=" + recvAddr, "--metrics-bind-address=" + metricsAddr,
		"--git-cache-dir=" + filepath.Join(dir, s.prefix+"-cache"),
	}
	args = append(args, strings.Fields(c.extra)...)
	logf("%s: starting sluice %v", s.label, args)
	m, err := sluiceproc.Start(ctx, bin, kubeconfig, filepath.Join(dir, s.prefix+"-sluice.log"), args)
	if err != nil {
		return r, err
	}
	defer func() {
		hwm := m.MustUsage().MaxRSS
		m.Stop()
		r.cpu, r.peakRSS = m.CPU, max(hwm, m.MaxRSS)
		logf("%s: sluice stopped (CPU %.1fs, peak RSS %s)", s.label, r.cpu.Seconds(), mib(r.peakRSS))
	}()
	keys := make([]types.NamespacedName, s.n)
	for i := range s.n {
		keys[i] = f.key(i)
	}

	// First apply: every GitSync created at once, until the last is Ready.
	rev0 := "main@sha1:" + sha0
	logf("%s: creating %d GitSyncs", s.label, s.n)
	t0 := time.Now()
	if err := f.createGitSyncs(ctx, cl, c.workers); err != nil {
		return r, err
	}
	at, err := obs.waitReady(ctx, keys, rev0, time.Now().Add(c.applyTimeout))
	if err != nil {
		r.firstApplyErr = err
		return r, fmt.Errorf("%s: first apply: %w (see %s)", s.label, err, m.Log)
	}
	r.firstApply = at.Sub(t0)
	logf("%s: every GitSync Ready at %s after %s", s.label, short(rev0), r.firstApply.Round(time.Millisecond))
	for _, k := range keys {
		if inv := obs.get(k).inventory; inv != s.k {
			return r, fmt.Errorf("%s: GitSync %s has %d objects in its inventory, want %d", s.label, k, inv, s.k)
		}
	}

	// A no-op interval: nothing changed in Git or in the cluster.
	logf("%s: settling %s, then counting the requests of one interval (%s)", s.label, c.settle, c.interval)
	if err := sleep(ctx, c.settle); err != nil {
		return r, err
	}
	h0, err := scrape(ctx, metricsAddr)
	if err != nil {
		return r, err
	}
	before, u0, w0 := proxy.Snapshot(), m.MustUsage(), time.Now()
	if err := sleep(ctx, c.interval); err != nil {
		return r, err
	}
	r.noop, r.noopFor, r.noopCPU = proxy.Snapshot().Sub(before), time.Since(w0), m.MustUsage().CPU-u0.CPU
	h1, err := scrape(ctx, metricsAddr)
	if err != nil {
		return r, err
	}
	r.noopSyncs, r.noopMeasured = h1.sub(h0), true
	logf("%s: no-op interval: %d writes (%d Lease), %d dry runs, %d reads, %.0f syncs",
		s.label, r.noop.Writes(), r.noop.Writes()-r.noop.Without(leaseResource).Writes(), r.noop.DryRuns(), r.noop.Reads(), r.noopSyncs.count)

	// Commit → applied, through a signed GitHub push to the receiver.
	r.commitApplied, r.commitAppliedErr = commitToApplied(ctx, c, f, cl, obs, "http://"+recvAddr, sha0)
	if r.commitAppliedErr != nil {
		logf("%s: commit → applied: %v", s.label, r.commitAppliedErr)
	} else {
		logf("%s: commit → applied in %s", s.label, r.commitApplied.Round(time.Millisecond))
	}

	// Drift → corrected: one applied object changed by hand.
	r.drift, r.driftErr = driftToCorrected(ctx, c, f, cl, s.n/2)
	if r.driftErr != nil {
		logf("%s: drift → corrected: %v", s.label, r.driftErr)
	} else {
		logf("%s: drift corrected in %s", s.label, r.drift.Round(time.Millisecond))
	}
	if m.Exited() {
		return r, fmt.Errorf("%s: sluice exited: see %s", s.label, m.Log)
	}
	return r, nil
}

// commitToApplied commits a new value of GitSync 0's first ConfigMap,
// delivers the push event, and times until the GitSync is Ready at the new
// revision and the ConfigMap holds the value.
func commitToApplied(ctx context.Context, c config, f *fleet, cl client.Client, obs *observer, receiver, sha0 string) (time.Duration, error) {
	sha1, err := f.changeConfig(0, "v2")
	if err != nil {
		return 0, err
	}
	body, err := pushPayload(f.repo.URL, sha0, sha1)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if _, err := push(ctx, receiver, f.namespace(0), gsName, f.token, body); err != nil {
		return 0, err
	}
	deadline := t0.Add(c.eventTimeout)
	_, cmName := objectName(0)
	cmSeen, err := waitConfigMap(ctx, cl, client.ObjectKey{Namespace: f.namespace(0), Name: cmName}, "v2", deadline)
	if err != nil {
		return 0, fmt.Errorf("the commit was not applied within %s: %w", c.eventTimeout, err)
	}
	ready, err := obs.waitReady(ctx, []types.NamespacedName{f.key(0)}, "main@sha1:"+sha1, deadline)
	if err != nil {
		return 0, fmt.Errorf("the GitSync was not Ready at the commit within %s: %w", c.eventTimeout, err)
	}
	if ready.After(cmSeen) {
		cmSeen = ready
	}
	return cmSeen.Sub(t0), nil
}

// driftToCorrected changes GitSync i's first ConfigMap by hand (a merge
// patch under another field manager, as kubectl edit would) and times until
// the value from Git is back.
func driftToCorrected(ctx context.Context, c config, f *fleet, cl client.Client, i int) (time.Duration, error) {
	_, cmName := objectName(0)
	key := client.ObjectKey{Namespace: f.namespace(i), Name: cmName}
	cm := &corev1.ConfigMap{}
	if err := cl.Get(ctx, key, cm); err != nil {
		return 0, err
	}
	want := cm.Data["value"]
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["value"] = "edited-by-hand"
	t0 := time.Now()
	if err := cl.Patch(ctx, cm, patch, client.FieldOwner("bench-hand-edit")); err != nil {
		return 0, fmt.Errorf("failed to edit %s: %w", key, err)
	}
	seen, err := waitConfigMap(ctx, cl, key, want, t0.Add(c.eventTimeout))
	if err != nil {
		return 0, fmt.Errorf("not corrected within %s: %w", c.eventTimeout, err)
	}
	return seen.Sub(t0), nil
}

// waitConfigMap polls (as admin, every 25 ms) until the ConfigMap's value
// is want, and returns when it was seen so.
func waitConfigMap(ctx context.Context, cl client.Client, key client.ObjectKey, want string, deadline time.Time) (time.Time, error) {
	for {
		cm := &corev1.ConfigMap{}
		err := cl.Get(ctx, key, cm)
		now := time.Now()
		if err == nil && cm.Data["value"] == want {
			return now, nil
		}
		if now.After(deadline) {
			if err != nil {
				return time.Time{}, err
			}
			return time.Time{}, fmt.Errorf("%s still has value %q, want %q", key, cm.Data["value"], want)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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
