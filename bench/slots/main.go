// Command slots measures what --max-concurrent-rollouts costs the Canaries
// that are not releasing (`go run ./bench/slots`, see docs/scale.md): with
// the limit on and one Canary whose confirm-rollout gate answers in 10 s,
// it reconciles N idle Canaries over and over and prints their reconcile
// latency (p50, p99, max) next to the goals. Before the slot lock guarded
// only its bookkeeping, every one of those reconciles waited for the gate.
//
// It runs a real kube-apiserver and etcd (pkg/testenv) and the real engine
// in-process; the benchmark stands in for kube-controller-manager and the
// kubelet by marking every Deployment's replicas ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/router"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// Goals: an idle Canary's reconcile reads caches and writes nothing, so it
// takes milliseconds whatever another Canary's gate does.
const (
	goalP50 = 20 * time.Millisecond
	goalP99 = 200 * time.Millisecond
)

type config struct {
	n        int
	gate     time.Duration
	window   time.Duration
	workers  int
	limit    int
	deadline time.Duration
}

func main() {
	var c config
	fs := flag.NewFlagSet("slots", flag.ExitOnError)
	fs.IntVar(&c.n, "n", 500, "Number of idle canaries.")
	fs.DurationVar(&c.gate, "gate", 10*time.Second, "How long the gated canary's confirm-rollout webhook takes to answer.")
	fs.DurationVar(&c.window, "window", 30*time.Second, "How long idle reconciles are measured while the gate is asked.")
	fs.IntVar(&c.workers, "workers", 8, "Concurrent reconciles of idle canaries (and the controller's workers).")
	fs.IntVar(&c.limit, "limit", 1, "--max-concurrent-rollouts; 0 (no limit) is the baseline to compare with.")
	fs.DurationVar(&c.deadline, "timeout", 15*time.Minute, "Bound on the whole run.")
	verbose := fs.Bool("v", false, "Log the engine's errors and state changes to stderr.")
	_ = fs.Parse(os.Args[1:])
	if c.n < 1 || c.workers < 1 || c.limit < 0 || c.gate <= 0 || c.window <= 0 {
		fmt.Fprintln(os.Stderr, "slots: -n and -workers must be at least 1, -limit at least 0 (no limit), -gate and -window positive")
		os.Exit(2)
	}
	if *verbose {
		ctrllog.SetLogger(zap.New())
	} else {
		ctrllog.SetLogger(logr.Discard())
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "slots:", err)
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := sluicev1beta1.AddToScheme(scheme); err != nil {
		return err
	}
	env, err := testenv.Start(scheme, testenv.WithServiceCIDR("10.96.0.0/16")) // 3 Services a canary
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ns, err := env.Namespace(ctx, "slots")
	if err != nil {
		return err
	}

	// The gate: slow, and closed, so the gated canary keeps asking it.
	var gateCalls, gateInFlight atomic.Int64
	closing := make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gateCalls.Add(1)
		gateInFlight.Add(1)
		defer gateInFlight.Add(-1)
		select {
		case <-time.After(c.gate):
		case <-r.Context().Done():
		case <-closing:
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer gate.Close()
	defer close(closing) // runs first: a call in flight answers now

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		return err
	}
	routers := router.NewRegistry()
	kubernetesrouter.Register(routers)
	r := &canary.CanaryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme, Routers: routers,
		Webhooks: webhooks.New(), DefaultProvider: sluicev1beta1.ProviderKubernetes,
		MaxConcurrentRollouts: c.limit, MaxConcurrentReconciles: c.workers,
	}
	mctx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	if err := r.SetupWithManager(mctx, mgr); err != nil {
		return err
	}
	go func() { _ = mgr.Start(mctx) }()
	go markReady(mctx, admin, ns)

	fmt.Printf("Creating %d idle canaries and one gated canary in %s\n", c.n, ns)
	names := make([]string, c.n)
	for i := range names {
		names[i] = fmt.Sprintf("idle-%04d", i)
	}
	all := append(slices.Clone(names), "gated")
	var created atomic.Int64
	go func() {
		for created.Load() < int64(len(all)) && ctx.Err() == nil {
			time.Sleep(15 * time.Second)
			fmt.Fprintf(os.Stderr, "  created %d of %d\n", created.Load(), len(all))
		}
	}()
	if err := parallel(16, all, func(name string) error {
		defer created.Add(1)
		if err := admin.Create(ctx, deployment(ns, name, "1.0")); err != nil {
			return err
		}
		cn := canaryOf(ns, name)
		if name == "gated" {
			cn.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.WebhookConfirmRollout, URL: gate.URL + "/"}}
		}
		return admin.Create(ctx, cn)
	}); err != nil {
		return err
	}
	start := time.Now()
	if err := waitPhases(ctx, admin, ns, len(all), sluicev1beta1.CanaryPhaseInitialized); err != nil {
		return err
	}
	fmt.Printf("All %d canaries initialized in %s\n", len(all), time.Since(start).Round(time.Second))

	// A new revision for the gated canary: it asks its slow gate, again and again.
	d := &appsv1.Deployment{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gated"}, d); err != nil {
		return err
	}
	d.Spec.Template.Spec.Containers[0].Image = "example.com/gated:2.0"
	if err := admin.Update(ctx, d); err != nil {
		return err
	}
	for gateInFlight.Load() == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}

	fmt.Printf("Reconciling idle canaries for %s with %d workers while the gate is asked\n", c.window, c.workers)
	lat, inFlight := measure(ctx, r, ns, names, c, func() bool { return gateInFlight.Load() > 0 })
	calls := gateCalls.Load()
	stopMgr()
	report(c, lat, inFlight, calls)
	return nil
}

// measure reconciles random idle canaries from c.workers goroutines for
// c.window and returns every reconcile's latency, and the share of the
// window during which a gate call was in flight (gateBusy).
func measure(ctx context.Context, r *canary.CanaryReconciler, ns string, names []string, c config, gateBusy func() bool) ([]time.Duration, float64) {
	var mu sync.Mutex
	var lat []time.Duration
	end := time.Now().Add(c.window)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				name := names[rand.IntN(len(names))]
				t0 := time.Now()
				_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
				dt := time.Since(t0)
				mu.Lock()
				lat = append(lat, dt)
				mu.Unlock()
			}
		}()
	}
	// Sample whether the gate is being asked, to show the overlap is real.
	probe := time.NewTicker(100 * time.Millisecond)
	defer probe.Stop()
	samples, busy := 0, 0
	for time.Now().Before(end) && ctx.Err() == nil {
		<-probe.C
		samples++
		if gateBusy() {
			busy++
		}
	}
	wg.Wait()
	if samples == 0 {
		return lat, 0
	}
	return lat, float64(busy) / float64(samples)
}

func report(c config, lat []time.Duration, busy float64, calls int64) {
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	verdict := func(v, goal time.Duration) string {
		if v <= goal {
			return "met"
		}
		return "MISSED"
	}
	fmt.Println()
	fmt.Printf("Idle canaries: %d   --max-concurrent-rollouts=%d   confirm-rollout gate: %s per answer (%d calls)\n", c.n, c.limit, c.gate, calls)
	fmt.Printf("Idle reconciles measured: %d over %s (gate call in flight %.0f%% of the window)\n\n", len(lat), c.window, busy*100)
	fmt.Printf("%-28s %12s %12s %8s\n", "idle reconcile latency", "measured", "goal", "")
	fmt.Printf("%-28s %12s %12s %8s\n", "p50", q(0.50).Round(time.Microsecond), goalP50, verdict(q(0.50), goalP50))
	fmt.Printf("%-28s %12s %12s %8s\n", "p99", q(0.99).Round(time.Microsecond), goalP99, verdict(q(0.99), goalP99))
	fmt.Printf("%-28s %12s %12s\n", "max", q(1).Round(time.Microsecond), "< "+c.gate.String())
}

// markReady stands in for kube-controller-manager and the kubelet: every
// Deployment gets the status of its spec's replicas all available.
func markReady(ctx context.Context, c client.Client, ns string) {
	for ctx.Err() == nil {
		list := &appsv1.DeploymentList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err == nil {
			for i := range list.Items {
				d := &list.Items[i]
				n := ptr.Deref(d.Spec.Replicas, 1)
				s := &d.Status
				if s.ObservedGeneration == d.Generation && s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n {
					continue
				}
				s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas = d.Generation, n, n, n, n
				_ = c.Status().Update(ctx, d)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func waitPhases(ctx context.Context, c client.Client, ns string, n int, phase sluicev1beta1.CanaryPhase) error {
	last := time.Now()
	for {
		list := &sluicev1beta1.CanaryList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		done := 0
		phases := map[sluicev1beta1.CanaryPhase]int{}
		for _, cn := range list.Items {
			phases[cn.Status.Phase]++
			if cn.Status.Phase == phase {
				done++
			}
		}
		if done == n {
			return nil
		}
		if time.Since(last) > 15*time.Second {
			fmt.Fprintf(os.Stderr, "  phases: %v\n", phases)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d canaries reached %s: %w", done, n, phase, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func parallel(workers int, names []string, f func(string) error) error {
	ch := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range ch {
				if err := f(name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, name := range names {
		ch <- name
	}
	close(ch)
	wg.Wait()
	close(errs)
	return <-errs
}

func deployment(ns, name, version string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/" + name + ":" + version,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

func canaryOf(ns, name string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderKubernetes,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 10 * time.Second}, Threshold: 1, Iterations: 1},
		},
	}
}
