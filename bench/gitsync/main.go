// Command gitsync is Sluice's GitSync benchmark (`make bench-gitsync`). For
// each of two shapes, many small GitSyncs (-gitsyncs of -objects each) and
// one large one (-mono-objects), it starts etcd and kube-apiserver
// (pkg/testenv), a Git server on loopback (git http-backend), and the real
// sluice binary behind a request-counting proxy, then measures the first
// apply, one no-op interval (API requests by verb, sync durations), commit
// → applied through the push receiver, drift → corrected, and the
// manager's CPU and peak RSS. It prints one table of figures next to their
// goals, with Flux's published figure beside them. See docs/scale.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/sluiceproc"
)

// config is the benchmark's flags.
type config struct {
	gitsyncs, objects, monoObjects int
	interval, settle               time.Duration
	applyTimeout, eventTimeout     time.Duration
	timeout                        time.Duration
	workers                        int
	keep                           bool
	extra                          string
}

func main() {
	var c config
	fs := flag.NewFlagSet("gitsync", flag.ExitOnError)
	fs.IntVar(&c.gitsyncs, "gitsyncs", 100, "Number of GitSyncs of the first shape (0 skips it).")
	fs.IntVar(&c.objects, "objects", 10, "Objects per GitSync of the first shape (ConfigMaps, Services and Deployments in turn).")
	fs.IntVar(&c.monoObjects, "mono-objects", 1000, "Objects of the second shape, one GitSync (0 skips it).")
	fs.DurationVar(&c.interval, "interval", time.Minute, "spec.interval of every GitSync; the no-op window is one interval.")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "Quiet time after the first apply before the no-op window.")
	fs.DurationVar(&c.applyTimeout, "apply-timeout", 20*time.Minute, "Bound on the first apply of a shape.")
	fs.DurationVar(&c.eventTimeout, "event-timeout", 0, "Bound on commit → applied and drift → corrected; 0 is two intervals + 30s.")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Minute, "Bound on the whole run; everything is stopped when it passes.")
	fs.IntVar(&c.workers, "workers", 16, "Parallel requests of the benchmark's own client when creating.")
	fs.BoolVar(&c.keep, "keep", false, "Keep the run directory (sluice logs, Git repositories) after the run.")
	fs.StringVar(&c.extra, "manager-args", "", "Extra flags for sluice, space-separated (e.g. \"--max-concurrent-git-reconciles=16\").")
	_ = fs.Parse(os.Args[1:])
	if c.eventTimeout == 0 {
		c.eventTimeout = 2*c.interval + 30*time.Second
	}
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
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
	if c.gitsyncs < 0 || c.objects < 1 || c.monoObjects < 0 {
		errs = append(errs, errors.New("-gitsyncs and -mono-objects must be at least 0 and -objects at least 1"))
	}
	if c.gitsyncs == 0 && c.monoObjects == 0 {
		errs = append(errs, errors.New("-gitsyncs and -mono-objects are both 0: nothing to measure"))
	}
	if c.gitsyncs > 999 {
		errs = append(errs, errors.New("-gitsyncs must be at most 999 (one namespace each, numbered with three digits)"))
	}
	if c.interval < 5*time.Second {
		errs = append(errs, errors.New("-interval must be at least 5s"))
	}
	if c.settle < 0 || c.applyTimeout <= 0 || c.eventTimeout <= 0 || c.timeout <= 0 || c.workers < 1 {
		errs = append(errs, errors.New("-settle must not be negative, the timeouts must be positive and -workers at least 1"))
	}
	return errors.Join(errs...)
}

// shapes are the workloads the flags ask for.
func (c config) shapes() []shape {
	var out []shape
	if c.gitsyncs > 0 {
		out = append(out, shape{label: fmt.Sprintf("%d×%d", c.gitsyncs, c.objects), prefix: "many", n: c.gitsyncs, k: c.objects})
	}
	if c.monoObjects > 0 {
		out = append(out, shape{label: fmt.Sprintf("1×%d", c.monoObjects), prefix: "mono", n: 1, k: c.monoObjects})
	}
	return out
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sluicev1beta1.AddToScheme(s))
	return s
}

// logf prints progress to stderr, so stdout holds only the results.
var logf = sluiceproc.Logf

func run(ctx context.Context, c config) (err error) {
	ctrllog.SetLogger(logr.Discard()) // the benchmark's own clients log nothing
	dir, bin, done, err := sluiceproc.Workdir(ctx, "sluice-bench-gitsync")
	if err != nil {
		return err
	}
	defer func() { done(c.keep || err != nil) }()
	var results []*result
	var errs []error
	for _, s := range c.shapes() {
		r, err := runShape(ctx, c, s, bin, dir)
		results = append(results, r)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	printReport(os.Stdout, c, results)
	return errors.Join(errs...)
}
