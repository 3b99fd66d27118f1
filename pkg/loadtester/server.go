package loadtester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// DefaultMaxBodyBytes bounds request bodies.
const DefaultMaxBodyBytes = 64 << 10

// Config is what a Server is built from.
type Config struct {
	// Auth authenticates every call but /healthz and /metrics. Required.
	Auth *Authenticator
	// Gates stores gates; nil means in memory.
	Gates GateStore
	// Shell configures command tasks (disabled by default).
	Shell ShellConfig
	// Load bounds http-load runs.
	Load LoadLimits
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Log receives structured logs.
	Log logr.Logger
	// Registry receives the metrics served on /metrics; nil means a new one.
	Registry *prometheus.Registry
}

// Server serves the load tester's API.
type Server struct {
	cfg     Config
	gates   GateStore
	runs    *runs
	shell   chan struct{}
	metrics *serverMetrics
	ctx     context.Context
	cancel  context.CancelFunc
	mux     *http.ServeMux
}

// ValidTaskTypes lists the task types of POST /.
func ValidTaskTypes() []string {
	return []string{TypeHTTPLoad, TypeCmd, TypeBash, TypeHelm, TypeKubectl}
}

// New builds a server, filling unset limits with defaults.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil {
		return nil, errors.New("loadtester: an authenticator is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDefault := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDefaultDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	l := &cfg.Load
	setDefaultDur(&l.MaxDuration, 10*time.Minute)
	setDefaultDur(&l.MaxSyncDuration, 30*time.Second)
	setDefault(&l.MaxRate, 1000)
	setDefault(&l.MaxConcurrency, 100)
	setDefault(&l.MaxRuns, 16)
	setDefault(&l.KeepRuns, 1000)
	sh := &cfg.Shell
	setDefaultDur(&sh.Timeout, time.Minute)
	setDefault(&sh.MaxOutput, 64<<10)
	setDefault(&sh.MaxConcurrent, 4)
	rules, err := compileRules(sh.Allow)
	if err != nil {
		return nil, err
	}
	sh.Allow = rules
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	gates := cfg.Gates
	if gates == nil {
		gates = NewMemoryGates()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		gates:   gates,
		runs:    &runs{byKey: map[string]*runState{}, lim: cfg.Load},
		shell:   make(chan struct{}, sh.MaxConcurrent),
		metrics: newServerMetrics(cfg.Registry),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops async runs and waits for them to end.
func (s *Server) Close() {
	s.cancel()
	s.runs.wg.Wait()
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.Handle("/{$}", s.authed("task", ScopeCheck, true, s.task))
	s.mux.Handle("/gate/approve", s.authed("approve", ScopeCheck, false, func(w http.ResponseWriter, _ *http.Request, _ *call) {
		reply(w, http.StatusOK, "approved")
	}))
	s.mux.Handle("/gate/halt", s.authed("halt", ScopeCheck, false, func(w http.ResponseWriter, _ *http.Request, _ *call) {
		reply(w, http.StatusForbidden, "halted")
	}))
	for _, kind := range []GateKind{KindGate, KindRollback} {
		s.mux.Handle("/"+string(kind)+"/check", s.authed(string(kind)+"-check", ScopeCheck, true, s.gateCheck(kind)))
		s.mux.Handle("/"+string(kind)+"/open", s.authed(string(kind)+"-open", ScopeOperate, true, s.gateSet(kind, true)))
		s.mux.Handle("/"+string(kind)+"/close", s.authed(string(kind)+"-close", ScopeOperate, true, s.gateSet(kind, false)))
	}
}

// call is an authenticated request and its payload.
type call struct {
	client  *Client
	payload webhooks.Payload
	log     logr.Logger
}

// authed reads the bounded body, authenticates the caller, checks it has
// scope and, when needPayload, decodes the payload and checks the caller has
// scope in its namespace.
func (s *Server) authed(endpoint string, scope Scope, needPayload bool, h func(http.ResponseWriter, *http.Request, *call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() { s.metrics.requests.WithLabelValues(endpoint, fmt.Sprint(rec.code)).Inc() }()
		w = rec
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			reply(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBodyBytes))
				return
			}
			reply(w, http.StatusBadRequest, "failed to read the body")
			return
		}
		client, err := s.cfg.Auth.Authenticate(r, body)
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			// The request id could not be recorded: refuse, but say it is not the caller's fault.
			s.cfg.Log.Error(err, "Refused a signed call", "endpoint", endpoint)
			reply(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if err != nil {
			s.cfg.Log.Info("Refused an unauthenticated call", "endpoint", endpoint, "remote", r.RemoteAddr, "reason", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-loadtester"`)
			reply(w, http.StatusUnauthorized, err.Error())
			return
		}
		c := &call{client: client, log: s.cfg.Log.WithValues("endpoint", endpoint, "client", client.Name)}
		if !needPayload && !client.HasScope(scope) {
			c.log.Info("Refused a call outside the client's scopes", "scope", scope)
			reply(w, http.StatusForbidden, fmt.Sprintf("client %q lacks scope %q, which %s needs", client.Name, scope, r.URL.Path))
			return
		}
		if needPayload {
			if err := json.Unmarshal(body, &c.payload); err != nil {
				reply(w, http.StatusBadRequest, "invalid JSON payload: "+err.Error())
				return
			}
			if c.payload.Name == "" || c.payload.Namespace == "" {
				reply(w, http.StatusBadRequest, "payload needs name and namespace")
				return
			}
			if msg := scopeRefusal(client, scope, c.payload.Namespace, r.URL.Path); msg != "" {
				c.log.Info("Refused a call outside the client's scopes", "namespace", c.payload.Namespace, "scope", scope)
				reply(w, http.StatusForbidden, msg)
				return
			}
			c.log = c.log.WithValues("canary", c.payload.Namespace+"/"+c.payload.Name)
		}
		h(w, r, c)
	})
}

// scopeRefusal explains why client may not call path (which needs scope) for
// namespace ns, or is empty when it may.
func scopeRefusal(client *Client, scope Scope, ns, path string) string {
	if client.Allows(scope, ns) {
		return ""
	}
	have := client.ScopesIn(ns)
	if len(have) == 0 {
		return fmt.Sprintf("client %q may not act on namespace %q", client.Name, ns)
	}
	msg := fmt.Sprintf("client %q lacks scope %q in namespace %q (it has %v), which %s needs", client.Name, scope, ns, have, path)
	if scope == ScopeOperate {
		msg += ": opening and closing gates is for a client a person holds, not Sluice's signing key"
	}
	return msg
}

func (s *Server) gateCheck(kind GateKind) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		open, err := s.gates.IsOpen(r.Context(), kind, c.payload.Namespace, c.payload.Name)
		if err != nil {
			c.log.Error(err, "Failed to read a gate")
			reply(w, http.StatusInternalServerError, err.Error())
			return
		}
		if open {
			reply(w, http.StatusOK, fmt.Sprintf("%s %s.%s is open", kind, c.payload.Name, c.payload.Namespace))
			return
		}
		reply(w, http.StatusForbidden, fmt.Sprintf("%s %s.%s is closed", kind, c.payload.Name, c.payload.Namespace))
	}
}

func (s *Server) gateSet(kind GateKind, open bool) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		if err := s.gates.Set(r.Context(), kind, c.payload.Namespace, c.payload.Name, open); err != nil {
			c.log.Error(err, "Failed to set a gate")
			reply(w, http.StatusInternalServerError, err.Error())
			return
		}
		state := "closed"
		if open {
			state = "opened"
		}
		c.log.Info("Gate changed", "kind", kind, "state", state)
		reply(w, http.StatusAccepted, fmt.Sprintf("%s %s.%s %s", kind, c.payload.Name, c.payload.Namespace, state))
	}
}

// task runs the task of metadata.type.
func (s *Server) task(w http.ResponseWriter, r *http.Request, c *call) {
	typ := c.payload.Metadata["type"]
	if typ == "" && c.payload.Metadata["cmd"] != "" {
		typ = TypeCmd // Flagger's default
	}
	switch typ {
	case TypeHTTPLoad:
		s.httpLoad(w, r, c)
	case TypeCmd, TypeBash, TypeHelm, TypeKubectl:
		s.command(w, r, c, typ)
	case "":
		reply(w, http.StatusBadRequest, "metadata.type is missing; valid types: "+strings.Join(ValidTaskTypes(), ", "))
	default:
		reply(w, http.StatusBadRequest, fmt.Sprintf("unknown task type %q; valid types: %s", typ, strings.Join(ValidTaskTypes(), ", ")))
	}
}

func (s *Server) command(w http.ResponseWriter, r *http.Request, c *call, typ string) {
	argv, err := commandFor(&s.cfg.Shell, typ, c.payload.Metadata["cmd"])
	if err != nil {
		c.log.Info("Refused a command task", "type", typ, "reason", err.Error())
		reply(w, http.StatusForbidden, err.Error())
		return
	}
	select {
	case s.shell <- struct{}{}:
		defer func() { <-s.shell }()
	default:
		reply(w, http.StatusTooManyRequests, fmt.Sprintf("%d commands already running", cap(s.shell)))
		return
	}
	c.log.Info("Running a command task", "type", typ, "argv", argv)
	out, err := runCommand(r.Context(), &s.cfg.Shell, argv)
	s.metrics.commands.WithLabelValues(c.payload.Namespace, c.payload.Name, fmt.Sprint(err == nil)).Inc()
	if err != nil {
		c.log.Info("Command task failed", "type", typ, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "output": out})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"output": out})
}

func (s *Server) httpLoad(w http.ResponseWriter, r *http.Request, c *call) {
	spec, err := ParseLoadSpec(c.payload.Metadata, s.cfg.Load)
	if err != nil {
		reply(w, http.StatusBadRequest, err.Error())
		return
	}
	p := c.payload
	run := func(ctx context.Context) LoadResult {
		c.log.Info("Load run started", "url", spec.URL, "rate", spec.Rate, "duration", spec.Duration.String(), "concurrency", spec.Concurrency)
		res := RunLoad(ctx, spec)
		s.metrics.record(p.Namespace, p.Name, res)
		c.log.Info("Load run finished", "requests", res.Requests, "errors", res.Errors, "successRatio", res.SuccessRatio, "p99", res.LatencyP99)
		return res
	}
	if spec.Sync {
		if !s.runs.acquire() {
			reply(w, http.StatusTooManyRequests, errTooManyRuns.Error())
			return
		}
		defer s.runs.release()
		res := run(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{"state": "done", "canary": p.Namespace + "/" + p.Name, "result": res})
		return
	}
	key, revision := runKey(&p)
	st, started, err := s.runs.start(s.ctx, key, p.Namespace+"/"+p.Name, revision, run) //nolint:contextcheck // an asynchronous run outlives the request: it ends with the server (s.ctx).
	switch {
	case errors.Is(err, errTooManyRuns):
		reply(w, http.StatusTooManyRequests, err.Error())
	case started:
		writeJSON(w, http.StatusAccepted, map[string]any{"state": "started", "run": st})
	case st.Result == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"state": "running", "run": st})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"state": "done", "run": st})
	}
}

// reply writes a JSON message.
func reply(w http.ResponseWriter, code int, msg string) {
	key := "message"
	if code >= 400 {
		key = "error"
	}
	writeJSON(w, code, map[string]string{key: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// serverMetrics are the load tester's Prometheus metrics.
type serverMetrics struct {
	requests     *prometheus.CounterVec
	commands     *prometheus.CounterVec
	loadRequests *prometheus.CounterVec
	loadErrors   *prometheus.CounterVec
	loadRuns     *prometheus.CounterVec
	loadSuccess  *prometheus.GaugeVec
	loadLatency  *prometheus.GaugeVec
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	canary := []string{"namespace", "name"}
	m := &serverMetrics{
		requests:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loadtester_http_requests_total", Help: "API calls by endpoint and status code."}, []string{"endpoint", "code"}),
		commands:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loadtester_commands_total", Help: "Command tasks run, by canary and success."}, append(canary, "success")),
		loadRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loadtester_load_requests_total", Help: "Requests sent by http-load runs, by canary."}, canary),
		loadErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loadtester_load_errors_total", Help: "Failed or non-2xx requests of http-load runs, by canary."}, canary),
		loadRuns:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_loadtester_load_runs_total", Help: "Finished http-load runs, by canary."}, canary),
		loadSuccess:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_loadtester_load_success_ratio", Help: "Success ratio of the last http-load run, by canary."}, canary),
		loadLatency:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_loadtester_load_latency_seconds", Help: "Latency quantiles (0.5, 0.9, 0.99, 1 = max) of the last http-load run, by canary."}, append(canary, "quantile")),
	}
	reg.MustRegister(m.requests, m.commands, m.loadRequests, m.loadErrors, m.loadRuns, m.loadSuccess, m.loadLatency)
	return m
}

func (m *serverMetrics) record(ns, name string, r LoadResult) {
	m.loadRequests.WithLabelValues(ns, name).Add(float64(r.Requests))
	m.loadErrors.WithLabelValues(ns, name).Add(float64(r.Errors))
	m.loadRuns.WithLabelValues(ns, name).Inc()
	m.loadSuccess.WithLabelValues(ns, name).Set(r.SuccessRatio)
	for q, v := range map[string]float64{"0.5": r.LatencyP50, "0.9": r.LatencyP90, "0.99": r.LatencyP99, "1": r.LatencyMax} {
		m.loadLatency.WithLabelValues(ns, name, q).Set(v)
	}
}
