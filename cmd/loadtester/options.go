package main

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-cd/sluice/pkg/loadtester"

	"github.com/sluice-cd/sluice/pkg/logging"
)

// Options are the load tester's settings, bound to command-line flags. No
// flag carries a secret: credentials come from --auth-file, mounted from a
// Secret.
type Options struct {
	Addr            string
	TLSCertFile     string
	TLSKeyFile      string
	AuthFile        string
	AuthReload      time.Duration
	SignatureMaxAge time.Duration
	MaxBodyBytes    int64

	GateStore     string
	GateNamespace string

	MaxDuration     time.Duration
	MaxSyncDuration time.Duration
	MaxRate         int
	MaxConcurrency  int
	MaxRuns         int
	AllowedHosts    string

	EnableShellTasks bool
	ShellAllow       stringList
	ShellAllowFile   string
	ShellTimeout     time.Duration
	MaxShellTasks    int
	MaxShellOutput   int

	ShutdownTimeout time.Duration
	LogLevel        string
	LogEncoding     string
	ShowVersion     bool
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// DefaultOptions returns the options used when no flag is given.
func DefaultOptions() Options {
	return Options{
		Addr:            ":8080",
		AuthFile:        "/etc/sluice-loadtester/auth.yaml",
		AuthReload:      30 * time.Second,
		SignatureMaxAge: 5 * time.Minute,
		MaxBodyBytes:    loadtester.DefaultMaxBodyBytes,
		GateStore:       "auto",
		MaxDuration:     time.Hour,
		MaxSyncDuration: 30 * time.Second,
		MaxRate:         1000,
		MaxConcurrency:  100,
		MaxRuns:         16,
		ShellTimeout:    time.Minute,
		MaxShellTasks:   4,
		MaxShellOutput:  64 << 10,
		ShutdownTimeout: 30 * time.Second,
		LogLevel:        "info",
		LogEncoding:     "json",
	}
}

// BindFlags registers every option on fs, with the receiver's values as defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "listen-address", o.Addr, "Address the API (tasks, gates, /healthz, /metrics) listens on.")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "Serve HTTPS with this certificate (with --tls-key-file).")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", o.TLSKeyFile, "Private key of --tls-cert-file.")
	fs.StringVar(&o.AuthFile, "auth-file", o.AuthFile, "YAML/JSON file of the clients allowed to call (name, hmacKey and/or token, namespaces and scopes check/operate); mount it from a Secret.")
	fs.DurationVar(&o.AuthReload, "auth-reload-interval", o.AuthReload, "How often --auth-file is re-read, so that rotated Secrets take effect without a restart.")
	fs.DurationVar(&o.SignatureMaxAge, "signature-max-age", o.SignatureMaxAge, "Refuse X-Sluice-Signature timestamps further than this from now; request ids are remembered (and pruned) for twice as long.")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "Largest request body accepted.")
	fs.StringVar(&o.GateStore, "gate-store", o.GateStore, "Where gates live: configmap (fail without cluster access), memory (lost on restart), or auto (configmap, else memory with a warning).")
	fs.StringVar(&o.GateNamespace, "gate-namespace", o.GateNamespace, "Namespace of the gate ConfigMaps; defaults to $POD_NAMESPACE or the pod's service account namespace.")
	fs.DurationVar(&o.MaxDuration, "max-duration", o.MaxDuration, "Longest http-load run.")
	fs.DurationVar(&o.MaxSyncDuration, "max-sync-duration", o.MaxSyncDuration, "Longest http-load run in sync mode (the webhook waits for it).")
	fs.IntVar(&o.MaxRate, "max-rate", o.MaxRate, "Highest http-load rate, in requests per second.")
	fs.IntVar(&o.MaxConcurrency, "max-concurrency", o.MaxConcurrency, "Most requests in flight per http-load run.")
	fs.IntVar(&o.MaxRuns, "max-runs", o.MaxRuns, "Most http-load runs at once; more are answered 429.")
	fs.StringVar(&o.AllowedHosts, "allowed-target-hosts", o.AllowedHosts, "Regexp the whole host name of every http-load target must match; empty allows any host.")
	fs.BoolVar(&o.EnableShellTasks, "enable-shell-tasks", o.EnableShellTasks, "Enable the cmd, bash, helm and kubectl task types, for allow-listed commands only.")
	fs.Var(&o.ShellAllow, "shell-allow", "Allow a command line (repeatable): an exact line, or re:<regexp> matching the whole line.")
	fs.StringVar(&o.ShellAllowFile, "shell-allow-file", o.ShellAllowFile, "YAML/JSON allow-list file: commands: [{exact|regexp, shell}].")
	fs.DurationVar(&o.ShellTimeout, "shell-timeout", o.ShellTimeout, "Timeout of one command task.")
	fs.IntVar(&o.MaxShellTasks, "max-shell-tasks", o.MaxShellTasks, "Most command tasks at once; more are answered 429.")
	fs.IntVar(&o.MaxShellOutput, "max-shell-output", o.MaxShellOutput, "Bytes of command output kept and returned.")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "How long to wait for calls in flight on shutdown.")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "Log level: debug, info or error.")
	fs.StringVar(&o.LogEncoding, "log-encoding", o.LogEncoding, "Log encoding: json or console.")
	fs.BoolVar(&o.ShowVersion, "version", o.ShowVersion, "Print the version and exit.")
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	if err := logging.Validate(o.LogLevel, o.LogEncoding); err != nil {
		errs = append(errs, err)
	}
	if o.AuthFile == "" {
		errs = append(errs, errors.New("--auth-file is required: every call but /healthz and /metrics is authenticated"))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	switch o.GateStore {
	case "auto", "configmap", "memory":
	default:
		errs = append(errs, fmt.Errorf("--gate-store must be auto, configmap or memory, not %q", o.GateStore))
	}
	for name, v := range map[string]time.Duration{"--signature-max-age": o.SignatureMaxAge, "--max-duration": o.MaxDuration, "--max-sync-duration": o.MaxSyncDuration, "--shell-timeout": o.ShellTimeout, "--auth-reload-interval": o.AuthReload, "--shutdown-timeout": o.ShutdownTimeout} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	for name, v := range map[string]int{"--max-rate": o.MaxRate, "--max-concurrency": o.MaxConcurrency, "--max-runs": o.MaxRuns, "--max-shell-tasks": o.MaxShellTasks, "--max-shell-output": o.MaxShellOutput} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	if o.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("--max-body-bytes must be at least 1024"))
	}
	if _, err := o.allowedHosts(); err != nil {
		errs = append(errs, err)
	}
	if !o.EnableShellTasks && (len(o.ShellAllow) > 0 || o.ShellAllowFile != "") {
		errs = append(errs, errors.New("--shell-allow and --shell-allow-file need --enable-shell-tasks"))
	}
	return errors.Join(errs...)
}

// allowedHosts compiles --allowed-target-hosts, anchored; nil allows any host.
func (o *Options) allowedHosts() (*regexp.Regexp, error) {
	if o.AllowedHosts == "" {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + o.AllowedHosts + `)$`)
	if err != nil {
		return nil, fmt.Errorf("--allowed-target-hosts: %w", err)
	}
	return re, nil
}
