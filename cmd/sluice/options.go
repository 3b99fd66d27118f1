package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/logging"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	nginxrouter "github.com/sluice-cd/sluice/pkg/router/nginx"
)

// Options are the manager's settings, bound to command-line flags. No
// credential is ever taken from a flag: metrics-provider and notifier
// credentials come from Secrets referenced by the API objects.
type Options struct {
	MetricsAddr                string
	MetricsSecure              bool
	ProbeAddr                  string
	LeaderElect                bool
	LeaderElectionID           string
	LeaderElectionNamespace    string
	LeaseDuration              time.Duration
	RenewDeadline              time.Duration
	RetryPeriod                time.Duration
	LogLevel                   string
	LogEncoding                string
	MetricsServer              string
	MetricsQueryTimeout        time.Duration
	DefaultProvider            string
	WatchNamespace             string
	KubeAPIQPS                 float64
	KubeAPIBurst               int
	GracefulShutdownTimeout    time.Duration
	MaxConcurrentRollouts      int
	MaxConcurrentReconciles    int
	MaxConcurrentGitReconciles int
	MetricConcurrency          int
	EnableConfigTracking       bool
	SelectorLabels             string
	TraefikNativeLB            bool
	GatewayAPIImpl             string
	IngressPrefix              string
	DefaultAlertProvider       string
	GitCacheDir                string
	GitURL                     string
	GitBranch                  string
	GitPath                    string
	GitSecret                  string
	GitInterval                time.Duration
	GitSyncName                string
	GitSyncNamespace           string
	GitReceiverAddr            string
	ClusterName                string
	Notifiers                  notifierOptions // notifier_flags.go
	EnablePromotion            bool
	PromotionAuthorName        string
	PromotionAuthorEmail       string
	PromotionSigningKey        string
	PromotionInsecureLocal     bool
	ShowVersion                bool
	ShardKey                   string
	WatchLabelSelector         string
	PprofAddr                  string

	// skipNameValidation lets tests run several managers in one process.
	skipNameValidation bool
}

// DefaultOptions returns the options a manager starts with when no flag is given.
func DefaultOptions() Options {
	return Options{
		MetricsAddr:             ":8080",
		ProbeAddr:               ":8081",
		LeaderElect:             true,
		LeaderElectionID:        "sluice-leader-election",
		LeaseDuration:           15 * time.Second,
		RenewDeadline:           10 * time.Second,
		RetryPeriod:             2 * time.Second,
		LogLevel:                "info",
		LogEncoding:             "json",
		MetricsServer:           "http://prometheus:9090",
		MetricsQueryTimeout:     10 * time.Second,
		DefaultProvider:         "kubernetes",
		KubeAPIQPS:              200,
		KubeAPIBurst:            400,
		GracefulShutdownTimeout: 30 * time.Second,
		// A Canary's reconcile mostly waits on the API server and the
		// metric queries: with N releases stepping at once, steps are late
		// once N ÷ workers × one reconcile's round trips exceeds the
		// interval. 8 workers made steps up to an interval late at N=300
		// on a busy control plane (docs/scale.md).
		MaxConcurrentReconciles: 32,
		// A GitSync's reconcile builds and applies a whole tree, a
		// Pipeline's clones and pushes a repository: CPU and memory, not
		// waiting.
		MaxConcurrentGitReconciles: 8,
		MetricConcurrency:          canary.DefaultMetricConcurrency,
		EnableConfigTracking:       true,
		SelectorLabels:             strings.Join(canary.DefaultSelectorLabels, ","),
		GatewayAPIImpl:             "traefik",
		IngressPrefix:              nginxrouter.DefaultAnnotationsPrefix,
		GitBranch:                  "main",
		GitInterval:                time.Minute,
		GitSyncName:                "cluster",
		GitSyncNamespace:           "sluice-system",
		PromotionAuthorName:        "Sluice",
		PromotionAuthorEmail:       "sluice@localhost",
	}
}

// BindFlags registers every option on fs, with the receiver's values as defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "Serve metrics over HTTPS, authenticated and authorized through the Kubernetes API.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address the /healthz and /readyz endpoints bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so that only one replica drives releases. On by default; turn off only for a single replica.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the Lease used for leader election.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader election Lease; defaults to the pod's namespace.")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", o.LeaseDuration, "How long a non-leader waits before taking over an expired lease.")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", o.RenewDeadline, "How long the leader keeps trying to renew before giving up.")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", o.RetryPeriod, "How often leader election actions are retried.")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "Log level: debug, info or error.")
	fs.StringVar(&o.LogEncoding, "log-encoding", o.LogEncoding, "Log encoding: json or console.")
	fs.StringVar(&o.MetricsServer, "metrics-server", o.MetricsServer, "Default Prometheus URL for the builtin metrics (no credentials: use a MetricTemplate's secretRef).")
	fs.DurationVar(&o.MetricsQueryTimeout, "metrics-query-timeout", o.MetricsQueryTimeout, "Timeout of one metrics query.")
	fs.StringVar(&o.DefaultProvider, "default-provider", o.DefaultProvider, "Traffic provider of Canaries that do not set spec.provider.")
	fs.StringVar(&o.WatchNamespace, "watch-namespace", o.WatchNamespace, "Restrict the controller to one namespace; empty watches all.")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second allowed to the Kubernetes API.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries allowed to the Kubernetes API.")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", o.GracefulShutdownTimeout, "How long to wait for running reconciles on shutdown.")
	fs.IntVar(&o.MaxConcurrentRollouts, "max-concurrent-rollouts", o.MaxConcurrentRollouts, "Releases that may progress at once; others wait in phase Waiting (reason ConcurrencyLimit), oldest first. 0 is no limit.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Canaries reconciled in parallel; a reconcile mostly waits on the API server and metric queries.")
	fs.IntVar(&o.MaxConcurrentGitReconciles, "max-concurrent-git-reconciles", o.MaxConcurrentGitReconciles, "GitSyncs and Pipelines reconciled in parallel; each builds a tree or clones and pushes a repository, so this bounds their CPU and memory.")
	fs.IntVar(&o.MetricConcurrency, "metric-concurrency", o.MetricConcurrency, "Metric queries of one analysis step run at once (a step costs about its slowest query).")
	fs.BoolVar(&o.EnableConfigTracking, "enable-config-tracking", o.EnableConfigTracking, "Track the ConfigMaps and Secrets of targets: copy them for the primary and release on their change.")
	fs.StringVar(&o.SelectorLabels, "selector-labels", o.SelectorLabels, "Comma-separated pod labels, in order of preference, whose value in a target's spec.selector.matchLabels identifies its pods (the primary's get <value>-primary).")
	fs.BoolVar(&o.TraefikNativeLB, "traefik-native-lb", o.TraefikNativeLB, "Set nativeLB: true on the weighted entries of generated TraefikServices (Traefik then sends traffic to Service ClusterIPs).")
	fs.StringVar(&o.GatewayAPIImpl, "gateway-api-implementation", o.GatewayAPIImpl, "Gateway API implementation whose series the gatewayapi builtin metrics query: traefik, envoy-gateway, istio, cilium, kong or nginx-gateway-fabric (those without per-backend series have no builtins: use a MetricTemplate).")
	fs.StringVar(&o.IngressPrefix, "ingress-annotations-prefix", o.IngressPrefix, "Annotation prefix of the Ingresses the nginx provider writes: the --annotations-prefix ingress-nginx runs with (Flagger's -ingress-annotations-prefix).")
	fs.StringVar(&o.DefaultAlertProvider, "default-alert-provider", o.DefaultAlertProvider, "AlertProvider (namespace/name) that receives the notifications of Canaries without analysis.alerts.")
	fs.StringVar(&o.GitCacheDir, "git-cache-dir", o.GitCacheDir, "Directory of the Git checkouts; defaults to a directory under the system temp dir.")
	fs.StringVar(&o.GitURL, "git-url", o.GitURL, "Bootstrap: create a GitSync for this repository (https://, ssh://) at start, unless it exists.")
	fs.StringVar(&o.GitBranch, "git-branch", o.GitBranch, "Bootstrap: the branch to sync.")
	fs.StringVar(&o.GitPath, "git-path", o.GitPath, "Bootstrap: the directory of the repository to apply.")
	fs.StringVar(&o.GitSecret, "git-secret", o.GitSecret, "Bootstrap: the Secret (in --gitsync-namespace) with the Git credentials; never pass credentials as flags.")
	fs.DurationVar(&o.GitInterval, "git-interval", o.GitInterval, "Bootstrap: how often to sync.")
	fs.StringVar(&o.GitSyncName, "gitsync-name", o.GitSyncName, "Bootstrap: the name of the GitSync.")
	fs.StringVar(&o.GitSyncNamespace, "gitsync-namespace", o.GitSyncNamespace, "Bootstrap: the namespace of the GitSync.")
	fs.StringVar(&o.GitReceiverAddr, "git-receiver-address", o.GitReceiverAddr, "Address of the GitSync push webhook receiver (POST /hooks/<namespace>/<name>), e.g. :9292; empty is off.")
	fs.BoolVar(&o.EnablePromotion, "enable-promotion", o.EnablePromotion, "Run the Pipeline controller (docs/promotion.md), which commits promoted images to Git. Off by default while it is being completed.")
	fs.StringVar(&o.PromotionAuthorName, "promotion-author-name", o.PromotionAuthorName, "Name that authors and commits the promotion commits.")
	fs.StringVar(&o.PromotionAuthorEmail, "promotion-author-email", o.PromotionAuthorEmail, "Email that authors and commits the promotion commits.")
	fs.BoolVar(&o.PromotionInsecureLocal, "promotion-insecure-loopback-registries", o.PromotionInsecureLocal, "Scan registries on loopback (localhost, 127.0.0.0/8, ::1) over plain HTTP, for a registry beside the manager; other registries are always scanned over HTTPS.")
	fs.StringVar(&o.PromotionSigningKey, "promotion-signing-key", o.PromotionSigningKey, "File (mounted from a Secret) of the key that signs promotion commits: an armored OpenPGP private key or an SSH private key; a file \"passphrase\" beside it decrypts it. Empty leaves commits unsigned.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "Name of this cluster in the context of commit statuses (sluice/<cluster>/...), so that clusters syncing one repository post apart, and in notifications (a Cluster field, as Flagger's -cluster-name); empty leaves it out.")
	fs.StringVar(&o.ShardKey, "shard-key", o.ShardKey, "Run as the shard that reconciles only the Canaries, GitSyncs and Pipelines labelled sharding.sluice.dev/key=<value>, with its own Lease (<leader-election-id>-<value>); see docs/scale.md.")
	fs.StringVar(&o.WatchLabelSelector, "watch-label-selector", o.WatchLabelSelector, "Reconcile only the Canaries, GitSyncs and Pipelines this label selector matches; the main manager of a sharded install takes '!sharding.sluice.dev/key'.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr, "Address of the Go profiler's /debug/pprof endpoints, e.g. 127.0.0.1:6060; empty (the default) is off. It has no authentication: bind it to loopback and reach it with kubectl port-forward.")
	fs.BoolVar(&o.ShowVersion, "version", o.ShowVersion, "Print the version and exit.")
	o.Notifiers.bindFlags(fs)
}

// clusterName is what --cluster-name accepts: it becomes part of a commit status context.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9._]{0,61}[A-Za-z0-9])?$`)

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	if err := logging.Validate(o.LogLevel, o.LogEncoding); err != nil {
		errs = append(errs, err)
	}
	if o.MetricsServer != "" {
		u, err := url.Parse(o.MetricsServer)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("--metrics-server must be an http:// or https:// URL, e.g. http://prometheus.monitoring:9090"))
		case u.User != nil:
			errs = append(errs, errors.New("--metrics-server must not carry credentials: put them in a Secret referenced by a MetricTemplate"))
		}
	}
	if o.MetricsQueryTimeout <= 0 {
		errs = append(errs, errors.New("--metrics-query-timeout must be positive"))
	}
	if o.DefaultProvider == "" {
		errs = append(errs, errors.New("--default-provider must not be empty"))
	}
	if _, err := gatewayapirouter.ParseImplementation(o.GatewayAPIImpl); err != nil {
		errs = append(errs, fmt.Errorf("--gateway-api-implementation: %w", err))
	}
	if o.LeaderElect && (o.LeaseDuration <= o.RenewDeadline || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0) {
		errs = append(errs, errors.New("leader election needs lease-duration > renew-deadline > retry-period > 0"))
	}
	if o.DefaultAlertProvider != "" {
		if ns, name, ok := strings.Cut(o.DefaultAlertProvider, "/"); !ok || ns == "" || name == "" {
			errs = append(errs, fmt.Errorf("--default-alert-provider must be namespace/name, not %q", o.DefaultAlertProvider))
		}
	}
	if o.GitURL != "" {
		u, err := url.Parse(o.GitURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "ssh" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("--git-url must be an https:// or ssh:// URL"))
		case u.User != nil && u.Scheme != "ssh":
			errs = append(errs, errors.New("--git-url must not carry credentials: put them in the Secret named by --git-secret"))
		}
		if o.GitInterval <= 0 {
			errs = append(errs, errors.New("--git-interval must be positive"))
		}
	}
	if o.EnablePromotion && (strings.TrimSpace(o.PromotionAuthorName) == "" || !strings.Contains(o.PromotionAuthorEmail, "@")) {
		errs = append(errs, errors.New("--enable-promotion needs --promotion-author-name and an email in --promotion-author-email, e.g. sluice@example.com"))
	}
	if o.ClusterName != "" && !clusterName.MatchString(o.ClusterName) {
		errs = append(errs, fmt.Errorf("--cluster-name must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, not %q", o.ClusterName))
	}
	if err := o.validateShard(); err != nil {
		errs = append(errs, err)
	}
	if err := validateIngressAnnotationsPrefix(o.IngressPrefix); err != nil {
		errs = append(errs, err)
	}
	if err := validateSelectorLabels(o.SelectorLabels); err != nil {
		errs = append(errs, err)
	}
	if o.MaxConcurrentRollouts < 0 {
		errs = append(errs, errors.New("--max-concurrent-rollouts must be 0 (no limit) or more"))
	}
	if o.MetricConcurrency < 1 {
		errs = append(errs, errors.New("--metric-concurrency must be at least 1"))
	}
	if o.MaxConcurrentReconciles < 1 {
		errs = append(errs, errors.New("--max-concurrent-reconciles must be at least 1"))
	}
	if o.MaxConcurrentGitReconciles < 1 {
		errs = append(errs, errors.New("--max-concurrent-git-reconciles must be at least 1"))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	errs = append(errs, o.Notifiers.validate()...)
	return errors.Join(errs...)
}
