// Command sluice is the Sluice controller manager: it runs the canary engine
// and the Git sync loop under one leader-elected controller-runtime manager.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/logging"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/router"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	"github.com/sluice-cd/sluice/pkg/router/providers"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// RBAC of the manager itself; each reconciler declares its own next to it.
// Leader election needs Leases only in its own namespace: a Role, whose
// namespace the chart sets to the release namespace.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=sluice-system
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

func main() {
	if len(os.Args) > 1 && os.Args[1] == "dashboard" {
		os.Exit(dashboardMain(os.Args[2:])) // the in-cluster dashboard (dashboard.go)
	}
	opts := DefaultOptions()
	fs := flag.NewFlagSet("sluice", flag.ExitOnError)
	opts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag
	if opts.ShowVersion {
		fmt.Println(version)
		return
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(newLogger(opts))
	if _, err := setMemoryLimit(os.Getenv, ctrl.Log); err != nil {
		ctrl.Log.Error(err, "Unable to set the Go memory limit")
		os.Exit(2)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		ctrl.Log.Error(err, "Unable to load the Kubernetes client configuration")
		os.Exit(1)
	}
	if err := run(ctrl.SetupSignalHandler(), opts, cfg); err != nil {
		ctrl.Log.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}

// newLogger builds the zap logger behind logr from validated options.
func newLogger(opts Options) logr.Logger { return logging.New(opts.LogLevel, opts.LogEncoding) }

// Scheme returns the scheme with the Kubernetes and Sluice types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sluicev1beta1.AddToScheme(s))
	// The Gateway API router reads typed HTTPRoutes from the cache; Istio and
	// Traefik objects are read as unstructured.
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// run starts the manager and blocks until ctx is done and the manager has
// shut down gracefully.
func run(ctx context.Context, opts Options, cfg *rest.Config) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = float32(opts.KubeAPIQPS)
	cfg.Burst = opts.KubeAPIBurst
	cfg.UserAgent = "sluice/" + version

	metricsOpts := metricsserver.Options{BindAddress: opts.MetricsAddr, SecureServing: opts.MetricsSecure}
	if opts.MetricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	routers, err := newRouters(opts)
	if err != nil {
		return err
	}
	scheme := Scheme()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return fmt.Errorf("failed to create the REST mapper: %w", err)
	}
	// The cache holds only the routing objects the routers labelled.
	byObject, err := router.CacheByObject(routers.InstalledKinds(mapper, scheme))
	if err != nil {
		return err
	}
	shard, err := opts.shardSelector()
	if err != nil {
		return err
	}
	// Cached objects keep only Sluice's managedFields entries (canary.CacheTransform).
	cacheOpts := cache.Options{ByObject: shardCache(byObject, shard), DefaultTransform: canary.CacheTransform}
	if opts.WatchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.WatchNamespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		MapperProvider:                func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        opts.ProbeAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              opts.leaderElectionID(),
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &opts.LeaseDuration,
		RenewDeadline:                 &opts.RenewDeadline,
		RetryPeriod:                   &opts.RetryPeriod,
		GracefulShutdownTimeout:       &opts.GracefulShutdownTimeout,
		Cache:                         cacheOpts,
		Logger:                        shardLogger(opts),
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", readyCheck(mgr)); err != nil {
		return fmt.Errorf("failed to add the readiness check: %w", err)
	}
	// The routers read their objects from the cache, unstructured ones
	// (Istio, Traefik) too; the manager's client keeps reading unstructured
	// objects live, for GitSync, which applies arbitrary kinds.
	routers.Client, err = client.New(mgr.GetConfig(), client.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient(),
		Cache: &client.CacheOptions{Reader: mgr.GetCache(), Unstructured: true},
	})
	if err != nil {
		return fmt.Errorf("failed to create the routers' client: %w", err)
	}
	routers.Live = mgr.GetAPIReader()
	if err := setupControllers(ctx, mgr, opts, routers); err != nil {
		return err
	}
	canary.SetInfo(version, opts.DefaultProvider) // flagger_info
	mgr.GetLogger().Info("Starting the manager", "version", version, "leaderElection", opts.LeaderElect, "selector", selectorString(shard))
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager failed: %w", err)
	}
	return nil
}

// newRouters builds the router registry.
func newRouters(opts Options) (*router.Registry, error) {
	routers := router.NewRegistry()
	// Every router is listed in pkg/router/providers, which also generates
	// the capability table of docs/routers.md.
	implName := opts.GatewayAPIImpl
	if implName == "" { // Options built without DefaultOptions (tests)
		implName = string(gatewayapirouter.ImplementationTraefik)
	}
	impl, err := gatewayapirouter.ParseImplementation(implName)
	if err != nil {
		return nil, fmt.Errorf("--gateway-api-implementation: %w", err)
	}
	providers.RegisterAll(routers, providers.Options{TraefikNativeLB: opts.TraefikNativeLB, GatewayAPIImplementation: impl,
		NginxAnnotationsPrefix: opts.IngressPrefix})
	if _, err := routers.New(opts.DefaultProvider, nil); err != nil {
		return nil, fmt.Errorf("--default-provider: %w", err)
	}
	return routers, nil
}

// setupControllers builds the other registries and registers the reconcilers.
func setupControllers(ctx context.Context, mgr ctrl.Manager, opts Options, routers *router.Registry) error {
	hooks := webhooks.New()
	hooks.Secret = webhooks.SecretFromReader(mgr.GetAPIReader())
	eventHooks := webhooks.NewEventQueue(hooks, ctrl.Log.WithName("event-webhooks"), 1000, 4) //nolint:contextcheck // the queue's workers live until Stop below, not for this call.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		// ctx is done: draining gets its own deadline, and keeps ctx's values.
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		eventHooks.Stop(stop)
		return nil
	})); err != nil {
		return fmt.Errorf("failed to add the event webhook queue: %w", err)
	}
	dispatcher, err := newDispatcher(mgr, opts)
	if err != nil {
		return err
	}
	recorders, err := newRecorders(mgr)
	if err != nil {
		return err
	}
	commitStatus := newCommitStatuses(mgr.GetAPIReader(), opts.ClusterName, ctrl.Log.WithName("commit-status"), recorders.NewRecorder("sluice"), 4, 256)
	if err := mgr.Add(commitStatus); err != nil {
		return fmt.Errorf("failed to add the commit status announcer: %w", err)
	}
	r := &canary.CanaryReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Scheme:     mgr.GetScheme(),
		Recorder:   recorders.NewRecorder("sluice"),
		Routers:    routers,
		Webhooks:   hooks,
		EventHooks: eventHooks,
		Announcer:  announcers{announcer{d: dispatcher}, commitStatus},
		Metrics: &metrics.Checker{Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(),
			DefaultAddress: opts.MetricsServer, Timeout: opts.MetricsQueryTimeout,
			Providers: newMetricProviders(mgr.GetClient()), Builtins: routers},
		DefaultProvider:         opts.DefaultProvider,
		MaxConcurrentRollouts:   opts.MaxConcurrentRollouts,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		MetricConcurrency:       opts.MetricConcurrency,
		DisableConfigTracking:   !opts.EnableConfigTracking,
		SelectorLabels:          selectorLabelList(opts.SelectorLabels),
		SkipNameValidation:      opts.skipNameValidation,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("failed to set up the canary controller: %w", err)
	}
	if err := registerDeliveryCollector(mgr); err != nil {
		return err
	}
	if err := setupPromotion(ctx, mgr, opts, routers, dispatcher, recorders); err != nil {
		return err
	}
	return setupGitSync(ctx, mgr, opts, gitSyncNotifier{d: dispatcher}, recorders)
}

// newDispatcher builds the notification dispatcher and runs it with the manager.
func newDispatcher(mgr ctrl.Manager, opts Options) (*notify.Dispatcher, error) {
	dopts := notify.DispatcherOptions{
		Reader: mgr.GetClient(), SecretReader: mgr.GetAPIReader(), Registerer: ctrlmetrics.Registry,
		Logger:  ctrl.Log.WithName("notify"),
		Globals: opts.Notifiers.globals(), ClusterName: opts.ClusterName,
	}
	if opts.DefaultAlertProvider != "" {
		ns, name, _ := strings.Cut(opts.DefaultAlertProvider, "/")
		dopts.DefaultProvider = &types.NamespacedName{Namespace: ns, Name: name}
	}
	d, err := notify.NewDispatcher(dopts)
	if err != nil {
		return nil, fmt.Errorf("failed to create the notification dispatcher: %w", err)
	}
	if err := mgr.Add(d); err != nil {
		return nil, fmt.Errorf("failed to add the notification dispatcher: %w", err)
	}
	return d, nil
}

// readyCheck reports ready once the informer caches have synced.
func readyCheck(mgr ctrl.Manager) healthz.Checker {
	return func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("informer caches have not synced")
		}
		return nil
	}
}
