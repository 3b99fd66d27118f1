package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/cli"
	"github.com/sluice-cd/sluice/pkg/dashboard"
	"github.com/sluice-cd/sluice/pkg/logging"
)

// `sluice dashboard` runs the in-cluster dashboard: the same binary as the
// manager, started by the chart as its own Deployment with its own
// ServiceAccount. The dashboard's ServiceAccount may impersonate any user,
// which the manager must not be able to do, and the manager's rights (write
// routing objects, Secrets of GitSync) must not be reachable from a web
// server exposed to people: two processes, two identities.

// dashboardOptions are the settings of `sluice dashboard`.
type dashboardOptions struct {
	BindAddress    string
	HealthAddress  string
	TLSCertFile    string
	TLSKeyFile     string
	AllowedHosts   string
	Audiences      string
	Namespace      string
	OIDCIssuerURL  string
	OIDCClientID   string
	OIDCUserClaim  string
	OIDCUserPrefix string
	OIDCGroupClaim string
	OIDCGrpPrefix  string
	LogLevel       string
	LogEncoding    string
}

func (o *dashboardOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.BindAddress, "bind-address", ":8443", "Address the dashboard serves on (TLS when --tls-cert-file is set).")
	fs.StringVar(&o.HealthAddress, "health-bind-address", ":8081", "Address of the plain-HTTP /healthz and /readyz probes (\"0\" disables them).")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "", "PEM certificate for HTTPS (re-read when it changes); empty serves plain HTTP for a TLS-terminating proxy.")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file.")
	fs.StringVar(&o.AllowedHosts, "allowed-hosts", "", "Comma-separated Host names served besides localhost (the Service's DNS names, the proxy's public name).")
	fs.StringVar(&o.Audiences, "token-audiences", "", "Comma-separated audiences a Kubernetes token must be meant for (TokenReview); empty means the API server's own.")
	fs.StringVar(&o.Namespace, "namespace", "", "Namespace the overview starts with (empty for all namespaces).")
	fs.StringVar(&o.OIDCIssuerURL, "oidc-issuer-url", "", "OIDC issuer whose ID tokens are accepted (empty: Kubernetes tokens only).")
	fs.StringVar(&o.OIDCClientID, "oidc-client-id", "", "Audience every OIDC ID token must carry.")
	fs.StringVar(&o.OIDCUserClaim, "oidc-username-claim", "sub", "ID token claim that names the user.")
	fs.StringVar(&o.OIDCUserPrefix, "oidc-username-prefix", "oidc:", "Prefix of OIDC user names in Kubernetes (\"-\" for none).")
	fs.StringVar(&o.OIDCGroupClaim, "oidc-groups-claim", "groups", "ID token claim that lists the groups (empty for none).")
	fs.StringVar(&o.OIDCGrpPrefix, "oidc-groups-prefix", "oidc:", "Prefix of OIDC groups in Kubernetes (\"-\" for none).")
	fs.StringVar(&o.LogLevel, "log-level", "info", "Log level: debug, info or error.")
	fs.StringVar(&o.LogEncoding, "log-encoding", "json", "Log encoding: json or console.")
}

func (o *dashboardOptions) validate() error {
	errs := []error{logging.Validate(o.LogLevel, o.LogEncoding)}
	if o.BindAddress == "" {
		errs = append(errs, errors.New("--bind-address must not be empty"))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	if (o.OIDCIssuerURL == "") != (o.OIDCClientID == "") {
		errs = append(errs, errors.New("--oidc-issuer-url and --oidc-client-id go together"))
	}
	if o.OIDCIssuerURL != "" && !strings.HasPrefix(o.OIDCIssuerURL, "https://") {
		errs = append(errs, fmt.Errorf("--oidc-issuer-url must be an https:// URL, not %q", o.OIDCIssuerURL))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// inCluster builds the dashboard's authentication from the options and the
// dashboard's own client configuration.
func (o *dashboardOptions) inCluster(cfg *rest.Config) (*dashboard.InClusterOptions, error) {
	scheme := Scheme()
	self, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create the dashboard's client: %w", err)
	}
	auth := &dashboard.Authenticators{TokenReview: &dashboard.TokenReviewAuthenticator{Client: self, Audiences: splitList(o.Audiences)}}
	if o.OIDCIssuerURL != "" {
		if auth.OIDC, err = dashboard.NewOIDCAuthenticator(dashboard.OIDCConfig{
			IssuerURL: o.OIDCIssuerURL, ClientID: o.OIDCClientID,
			UsernameClaim: o.OIDCUserClaim, UsernamePrefix: o.OIDCUserPrefix,
			GroupsClaim: o.OIDCGroupClaim, GroupsPrefix: o.OIDCGrpPrefix,
		}); err != nil {
			return nil, err
		}
	}
	return &dashboard.InClusterOptions{
		Authenticator: auth,
		Config:        cfg,
		ClientOptions: client.Options{Scheme: scheme},
		AllowedHosts:  splitList(o.AllowedHosts),
	}, nil
}

// dashboardMain runs `sluice dashboard args...` and returns the exit code.
func dashboardMain(args []string) int {
	o := &dashboardOptions{}
	fs := flag.NewFlagSet("sluice dashboard", flag.ExitOnError)
	o.bindFlags(fs)
	_ = fs.Parse(args) // ExitOnError
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := logging.New(o.LogLevel, o.LogEncoding)
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Unable to load the Kubernetes client configuration")
		return 1
	}
	cfg.UserAgent = "sluice-dashboard/" + version
	if err := runDashboard(ctrl.SetupSignalHandler(), o, cfg, log); err != nil {
		log.Error(err, "Dashboard stopped with an error")
		return 1
	}
	return 0
}

// runDashboard serves until ctx ends.
func runDashboard(ctx context.Context, o *dashboardOptions, cfg *rest.Config, log logr.Logger) error {
	ic, err := o.inCluster(cfg)
	if err != nil {
		return err
	}
	srv, err := dashboard.New(dashboard.Options{Act: cli.Act, Namespace: o.Namespace, Log: log.WithName("dashboard"), InCluster: ic})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr: o.BindAddress, Handler: srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		// Bounded headers: a token is at most 16 KiB (the body is bounded by the server).
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	if o.TLSCertFile != "" {
		certs := &reloadingCert{certFile: o.TLSCertFile, keyFile: o.TLSKeyFile}
		if _, err := certs.get(nil); err != nil {
			return err
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	}
	errc := make(chan error, 2)
	if o.HealthAddress != "0" && o.HealthAddress != "" {
		health := http.NewServeMux()
		ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
		health.HandleFunc("GET /healthz", ok)
		health.HandleFunc("GET /readyz", ok)
		hsHealth := &http.Server{Addr: o.HealthAddress, Handler: health, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- ignoreClosed(hsHealth.ListenAndServe()) }()
		defer func() { _ = hsHealth.Close() }()
	}
	go func() {
		log.Info("Serving the dashboard", "address", o.BindAddress, "tls", o.TLSCertFile != "")
		if o.TLSCertFile != "" {
			errc <- ignoreClosed(hs.ListenAndServeTLS("", ""))
			return
		}
		errc <- ignoreClosed(hs.ListenAndServe())
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Live streams never end by themselves: close what is left after the grace period.
	if err := hs.Shutdown(shutdown); err != nil {
		_ = hs.Close()
	}
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// reloadingCert re-reads the certificate at most once a minute, so a
// renewed Secret (cert-manager) is served without a restart.
type reloadingCert struct {
	certFile, keyFile string

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded time.Time
}

func (c *reloadingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Since(c.loaded) < time.Minute {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // keep serving the last good one
		}
		return nil, fmt.Errorf("failed to load the TLS certificate: %w", err)
	}
	c.cert, c.loaded = &cert, time.Now()
	return c.cert, nil
}
