// Command loadtester is Sluice's load tester: the HTTP service Canary
// webhooks call to generate load (type http-load), run allow-listed
// commands (only with --enable-shell-tasks) and hold manual gates, stored as
// ConfigMaps. Every call but /healthz and /metrics is authenticated with
// the clients of --auth-file.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager/signals"

	"github.com/sluice-cd/sluice/pkg/loadtester"
	"github.com/sluice-cd/sluice/pkg/logging"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	opts := DefaultOptions()
	fs := flag.NewFlagSet("loadtester", flag.ExitOnError)
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
	log := newLogger(opts)
	ctrllog.SetLogger(log)
	ctx := signals.SetupSignalHandler()
	if err := run(ctx, opts, log, kubeConfig); err != nil {
		log.Error(err, "Load tester stopped with an error")
		os.Exit(1)
	}
}

// newLogger builds the zap logger behind logr from validated options.
func newLogger(opts Options) logr.Logger { return logging.New(opts.LogLevel, opts.LogEncoding) }

// kubeConfig loads the cluster configuration (in-cluster, $KUBECONFIG or ~/.kube/config).
func kubeConfig() (*rest.Config, error) { return config.GetConfig() }

// run builds the server from opts and serves until ctx is done, then shuts
// down gracefully.
func run(ctx context.Context, opts Options, log logr.Logger, getConfig func() (*rest.Config, error)) error {
	srv, err := buildServer(ctx, opts, log, getConfig)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", opts.Addr, err)
	}
	return serve(ctx, opts, log, srv.Handler(), ln)
}

// serve serves h on ln until ctx is done.
func serve(ctx context.Context, opts Options, log logr.Logger, h http.Handler, ln net.Listener) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if opts.TLSCertFile != "" {
			err = hs.ServeTLS(ln, opts.TLSCertFile, opts.TLSKeyFile)
		} else {
			err = hs.Serve(ln)
		}
		errc <- err
	}()
	log.Info("Load tester listening", "version", version, "address", ln.Addr().String(), "tls", opts.TLSCertFile != "")
	select {
	case err := <-errc:
		return fmt.Errorf("server failed: %w", err)
	case <-ctx.Done():
	}
	log.Info("Shutting down", "timeout", opts.ShutdownTimeout.String())
	// ctx is done: the shutdown gets its own deadline, and keeps ctx's values.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown failed: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server failed: %w", err)
	}
	return nil
}

// buildServer loads the auth file and allow-list and picks the gate store.
func buildServer(ctx context.Context, opts Options, log logr.Logger, getConfig func() (*rest.Config, error)) (*loadtester.Server, error) {
	authData, _ := os.ReadFile(opts.AuthFile) // before parsing: a change in between is reloaded
	af, err := loadtester.LoadAuthFile(opts.AuthFile)
	if err != nil {
		return nil, err
	}
	var allow []loadtester.AllowRule
	if opts.ShellAllowFile != "" {
		if allow, err = loadtester.LoadAllowFile(opts.ShellAllowFile); err != nil {
			return nil, err
		}
	}
	for _, v := range opts.ShellAllow {
		allow = append(allow, loadtester.ParseAllowFlag(v))
	}
	if opts.EnableShellTasks {
		log.Info("Command tasks are enabled", "allowListEntries", len(allow))
		if len(allow) == 0 {
			log.Info("WARNING: --enable-shell-tasks is set but the allow-list is empty: every command will be refused")
		}
	}
	gates, replay, err := stores(ctx, opts, log, getConfig)
	if err != nil {
		return nil, err
	}
	auth, err := loadtester.NewAuthenticator(af, opts.SignatureMaxAge, replay)
	if err != nil {
		return nil, err
	}
	hosts, _ := opts.allowedHosts() // validated before
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	go reloadAuth(ctx, opts, log, auth, authData)
	return loadtester.New(loadtester.Config{
		Auth:         auth,
		Registry:     reg,
		Gates:        gates,
		MaxBodyBytes: opts.MaxBodyBytes,
		Log:          log,
		Shell: loadtester.ShellConfig{
			Enabled:       opts.EnableShellTasks,
			Allow:         allow,
			Timeout:       opts.ShellTimeout,
			MaxOutput:     opts.MaxShellOutput,
			MaxConcurrent: opts.MaxShellTasks,
		},
		Load: loadtester.LoadLimits{
			MaxDuration:     opts.MaxDuration,
			MaxSyncDuration: opts.MaxSyncDuration,
			MaxRate:         opts.MaxRate,
			MaxConcurrency:  opts.MaxConcurrency,
			MaxRuns:         opts.MaxRuns,
			AllowedHosts:    hosts,
		},
	})
}

// reloadAuth re-reads the auth file every opts.AuthReload until ctx is
// done and updates auth when the content differs from last; a broken file
// keeps the previous clients.
func reloadAuth(ctx context.Context, opts Options, log logr.Logger, auth *loadtester.Authenticator, last []byte) {
	t := time.NewTicker(opts.AuthReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(opts.AuthFile)
		if err != nil || bytes.Equal(data, last) {
			continue
		}
		f, err := loadtester.LoadAuthFile(opts.AuthFile)
		if err == nil {
			err = auth.Update(f)
		}
		if err != nil {
			log.Error(err, "Kept the previous clients: the changed auth file is invalid")
			continue
		}
		last = data
		log.Info("Reloaded the auth file", "clients", len(f.Clients))
	}
}

// stores returns the gate store and the request-id replay guard: ConfigMaps
// when the cluster is reachable (shared by replicas), else (in auto mode)
// memory with a loud warning.
func stores(ctx context.Context, opts Options, log logr.Logger, getConfig func() (*rest.Config, error)) (loadtester.GateStore, webhooks.ReplayGuard, error) {
	const single = "they are lost on restart and not shared between replicas: run one replica"
	if opts.GateStore == "memory" {
		log.Info("WARNING: gates and the ids of signed requests are kept in memory (--gate-store=memory): " + single)
		return loadtester.NewMemoryGates(), webhooks.NewReplayCache(0), nil
	}
	cs, ns, err := clusterClient(ctx, opts, getConfig)
	if err == nil {
		log.Info("Gates and the ids of signed requests are stored as ConfigMaps", "namespace", ns)
		guard := loadtester.NewConfigMapReplayGuard(cs, ns)
		go guard.RunPrune(ctx, opts.SignatureMaxAge, func(err error) { log.Error(err, "Failed to prune expired request ids") })
		return loadtester.NewConfigMapGates(cs, ns), guard, nil
	}
	if opts.GateStore == "configmap" {
		return nil, nil, err
	}
	log.Error(err, "WARNING: no cluster access: gates and the ids of signed requests are kept in MEMORY; "+single+". Fix the access or set --gate-store=configmap to fail instead")
	return loadtester.NewMemoryGates(), webhooks.NewReplayCache(0), nil
}

// clusterClient returns a client of the cluster and the namespace of the
// ConfigMaps, once read access to them was probed.
func clusterClient(ctx context.Context, opts Options, getConfig func() (*rest.Config, error)) (kubernetes.Interface, string, error) {
	ns := opts.GateNamespace
	if ns == "" {
		ns = podNamespace()
	}
	if ns == "" {
		return nil, "", errors.New("the gate namespace is unknown: set --gate-namespace or $POD_NAMESPACE")
	}
	cfg, err := getConfig()
	if err != nil {
		return nil, "", fmt.Errorf("failed to load the cluster configuration: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "sluice-loadtester/" + version
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("failed to create a Kubernetes client: %w", err)
	}
	// Probe read access once, so that a missing RBAC rule shows at start.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cs.CoreV1().ConfigMaps(ns).Get(pctx, loadtester.ConfigMapName(loadtester.KindGate, "probe", "probe"), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, "", fmt.Errorf("failed to read ConfigMaps in namespace %s: %w", ns, err)
	}
	return cs, ns, nil
}

// podNamespace is $POD_NAMESPACE, else the service account's namespace.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
