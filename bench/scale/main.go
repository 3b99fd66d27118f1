// Command scale is Sluice's scale benchmark (`make bench`): it starts a local
// control plane (kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok fake nodes), N Canaries of Deployments (a quarter each with the
// kubernetes, gatewayapi, istio and traefik providers, each with a Prometheus
// metric answered by a stand-in), runs the real sluice binary against it
// through a request-counting proxy, and prints one table: idle API
// requests, step lateness and release durations with all N progressing at
// once, API writes per step, controller CPU and peak RSS, then the same
// with --max-concurrent-rollouts. See docs/scale.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// config is the benchmark's flags.
type config struct {
	n          int
	interval   time.Duration
	limit      int
	idle       time.Duration
	settle     time.Duration
	timeout    time.Duration
	workers    int
	keep       bool
	extra      string
	stepWeight int
	maxWeight  int
	iterations int
	shards     int
	flagger    bool
	unlimited  bool
}

func main() {
	var c config
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	fs.IntVar(&c.n, "n", 100, "Number of canaries (a quarter each kubernetes, gatewayapi, istio, traefik), e.g. 100, 500, 1000.")
	fs.DurationVar(&c.interval, "interval", 10*time.Second, "Analysis interval of every canary.")
	fs.IntVar(&c.limit, "limit", -1, "--max-concurrent-rollouts of the second run; -1 is n/2, 0 skips the second run.")
	fs.DurationVar(&c.idle, "idle", 6*time.Minute, "How long idle API requests are counted; at least 5m to include the engine's idle resync of every canary.")
	fs.DurationVar(&c.settle, "settle", 15*time.Second, "Quiet time after initialization before the idle window.")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "Bound on the whole run; everything is stopped when it passes.")
	fs.IntVar(&c.workers, "workers", 16, "Parallel requests of the benchmark's own client when creating and releasing.")
	fs.BoolVar(&c.keep, "keep", false, "Keep the run directory (controller logs) after the run.")
	fs.StringVar(&c.extra, "manager-args", "", "Extra flags for sluice, space-separated (e.g. \"--kube-api-qps=200 --max-concurrent-reconciles=8\").")
	fs.IntVar(&c.stepWeight, "step-weight", 20, "stepWeight of the gatewayapi canaries.")
	fs.IntVar(&c.maxWeight, "max-weight", 60, "maxWeight of the gatewayapi canaries.")
	fs.IntVar(&c.iterations, "iterations", 3, "iterations of the kubernetes (blue/green) canaries.")
	fs.IntVar(&c.shards, "shards", 0, "Shard mode (docs/scale.md \"Sharding\"): label the canaries for this many shards, run one controller then the shards, and print each one's peak RSS; 0 is off.")
	fs.BoolVar(&c.flagger, "compare-flagger", false, "Side by side with Flagger (docs/scale.md): run Flagger v1.44.0 (hack/tools.sh flagger) then sluice on the same control plane, proxy and metric stand-in, each with its own N canaries, and print one table of both.")
	fs.BoolVar(&c.unlimited, "disable-qps-limits", false, "Lift the client rate limits of kube-controller-manager and kube-scheduler (20 and 50 requests/s), as kwokctl --disable-qps-limits does, so pods start in seconds and release times are the engines' (docs/scale.md).")
	_ = fs.Parse(os.Args[1:])
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if c.limit < 0 {
		c.limit = max(c.n/2, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	var errs []error
	if c.n < len(providers) {
		errs = append(errs, fmt.Errorf("-n must be at least %d (one canary per provider)", len(providers)))
	}
	if c.interval < time.Second {
		errs = append(errs, errors.New("-interval must be at least 1s"))
	}
	if c.stepWeight < 1 || c.maxWeight < c.stepWeight || c.maxWeight > 100 {
		errs = append(errs, errors.New("-step-weight and -max-weight need 1 ≤ step-weight ≤ max-weight ≤ 100"))
	}
	if c.iterations < 1 {
		errs = append(errs, errors.New("-iterations must be at least 1"))
	}
	if c.flagger && c.shards > 0 {
		errs = append(errs, errors.New("-compare-flagger and -shards are separate runs; give one"))
	}
	if c.shards < 0 || c.shards == 1 {
		errs = append(errs, errors.New("-shards must be 0 (off) or at least 2"))
	}
	if c.idle <= 0 || c.timeout <= 0 || c.workers < 1 {
		errs = append(errs, errors.New("-idle and -timeout must be positive and -workers at least 1"))
	}
	return errors.Join(errs...)
}

// controlPlaneLimits says in a report's heading how fast the cluster's own
// controllers could create pods, which bounds every release's duration.
func (c config) controlPlaneLimits() string {
	if c.unlimited {
		return "kube-controller-manager and kube-scheduler without client rate limits (-disable-qps-limits)"
	}
	return "kube-controller-manager and kube-scheduler at their default client rate limits (20 and 50 requests/s)"
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sluicev1beta1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}

// logf prints progress to stderr, so stdout holds only the results.
var logf = sluiceproc.Logf

func run(ctx context.Context, c config) (err error) {
	ctrllog.SetLogger(logr.Discard()) // the benchmark's own clients log nothing
	dir, bin, done, err := sluiceproc.Workdir(ctx, "sluice-bench")
	if err != nil {
		return err
	}
	defer func() { done(c.keep || err != nil) }()
	logf("starting the control plane (etcd, kube-apiserver, kcm, scheduler, kwok)")
	s := scheme()
	opts := []testenv.Option{testenv.WithControllers(), testenv.WithProviderCRDs(), testenv.WithServiceCIDR("10.96.0.0/16")}
	if c.unlimited {
		logf("kube-controller-manager and kube-scheduler run without client rate limits")
		opts = append(opts, testenv.WithoutClientLimits())
	}
	env, err := testenv.Start(s, opts...)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping the control plane")
		_ = env.Stop()
	}()
	// Each node takes 1000 pods; a release runs two pods per canary.
	if extra := (2*c.n + 100) / 1000; extra > 0 {
		if err := env.AddFakeNodes(ctx, extra); err != nil {
			return err
		}
	}
	admin := rest.CopyConfig(env.Config)
	admin.QPS, admin.Burst = 1000, 2000
	cl, err := client.New(admin, client.Options{Scheme: s})
	if err != nil {
		return err
	}
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	proxy, err := apicount.Start(env.Config, apicount.Options{Attribute: attribute, Logf: logf, RecordReads: true})
	if err != nil {
		return err
	}
	defer proxy.Stop()
	kubeconfig := filepath.Join(dir, "controller.kubeconfig")
	if err := proxy.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	promURL, queries, stopProm, err := startPromStub()
	if err != nil {
		return err
	}
	defer stopProm()
	obs, err := startObserver(ctx, admin, s)
	if err != nil {
		return err
	}
	f := &fleet{c: cl, n: c.n, interval: c.interval, stepWeight: int32(c.stepWeight), maxWeight: int32(c.maxWeight), iterations: int32(c.iterations), shards: c.shards}
	logf("creating %d canaries (Deployments, ConfigMaps, Canaries in %d namespaces)", c.n, (c.n+perNamespace-1)/perNamespace)
	if err := f.create(ctx, c.workers); err != nil {
		return err
	}
	base := []string{"--leader-election-namespace=sluice-system", "--metrics-server=" + promURL, "--log-encoding=json"}
	base = append(base, strings.Fields(c.extra)...)
	b := &bench{cfg: c, fleet: f, obs: obs, proxy: proxy, queries: queries, bin: bin, kubeconfig: kubeconfig, dir: dir}

	if c.shards > 0 {
		return b.runShardMode(ctx, os.Stdout, base)
	}
	if c.flagger {
		return b.runCompareFlagger(ctx, os.Stdout, admin, s, promURL, base)
	}
	var results []*result
	r, err := b.runOnce(ctx, "no limit", 0, base, true, "2")
	if r != nil {
		results = append(results, r)
	}
	if err == nil && c.limit > 0 {
		r, err = b.runOnce(ctx, fmt.Sprintf("--max-concurrent-rollouts=%d", c.limit), c.limit,
			append(append([]string{}, base...), fmt.Sprintf("--max-concurrent-rollouts=%d", c.limit)), false, "3")
		if r != nil {
			results = append(results, r)
		}
	}
	if len(results) > 0 {
		printReport(os.Stdout, c, f, results)
	}
	return err
}
