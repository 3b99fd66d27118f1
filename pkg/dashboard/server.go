// Package dashboard is Sluice's web dashboard: a small HTTP server with its
// assets embedded, showing Canaries and GitSyncs and driving releases.
//
// Every read and action goes through the client it is given, so in local mode
// (kubectl sluice dashboard) the page sees exactly what the user's kubeconfig
// allows. The in-cluster mode (incluster.go) authenticates every request and
// makes each API call as the request's caller, by impersonation.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

//go:embed assets
var assets embed.FS

// Actor performs an action (promote, abort, retry, suspend, resume, sync) on
// a Canary or GitSync with the caller's client. It returns a short message
// for the page, or an error whose text the user may read (no secrets).
type Actor func(ctx context.Context, c client.Client, a Action) (string, error)

// Action is one requested action.
type Action struct {
	// Kind is "Canary" or "GitSync".
	Kind      string
	Namespace string
	Name      string
	// Verb is promote, abort, retry, suspend, resume (Canary) or sync, suspend, resume (GitSync).
	Verb string
}

// Options configure a Server.
type Options struct {
	// Client reads, watches and acts for the user (local mode: the kubeconfig's user).
	Client client.WithWatch
	// Act performs actions; nil disables them (the page then offers none).
	Act Actor
	// Namespace is the namespace the overview starts with ("" for all).
	Namespace string
	// Log receives request failures (never request bodies or tokens).
	Log logr.Logger
	// InCluster, when set, authenticates every request and makes every API
	// call as its caller (incluster.go); Client is then ignored.
	InCluster *InClusterOptions
}

// Server serves the dashboard.
type Server struct {
	opts Options
	gate *authGate // in-cluster mode only

	mu       sync.Mutex
	sessions map[string]string // session cookie -> CSRF token
}

// New returns a dashboard server.
func New(opts Options) (*Server, error) {
	var gate *authGate
	if opts.InCluster != nil {
		if err := opts.InCluster.prepare(); err != nil {
			return nil, err
		}
		gate = newAuthGate(opts.InCluster)
		opts.Client = &callerClient{scheme: opts.InCluster.ClientOptions.Scheme, mapper: opts.InCluster.ClientOptions.Mapper}
	}
	if opts.Client == nil {
		return nil, errors.New("the dashboard needs a Kubernetes client")
	}
	return &Server{opts: opts, gate: gate, sessions: map[string]string{}}, nil
}

// sessionCookie names the cookie that ties a browser to its CSRF token.
const sessionCookie = "sluice_dashboard_session"

// sessionCookieName is sessionCookie with the port the page was served on.
// Browsers send a host's cookies to every port of it, so two dashboards on
// 127.0.0.1 (two clusters, two terminals) would otherwise replace each
// other's session, and every action of the older page would fail its CSRF
// check until it was reloaded.
func sessionCookieName(r *http.Request) string {
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil || port == "" || strings.Trim(port, "0123456789") != "" {
		return sessionCookie
	}
	return sessionCookie + "_" + port
}

// maxSessions bounds the sessions kept in memory.
const maxSessions = 256

// csrfHeader carries the CSRF token on every action.
const csrfHeader = "X-Sluice-CSRF"

// Handler is the dashboard's HTTP handler, with the Host check and the
// security headers around every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets") // the directory is embedded: cannot fail
	files := http.FileServer(http.FS(static))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.ensureSession(w, r)
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /api/session", s.handleSession)
	mux.HandleFunc("GET /api/events", s.handleEvents)
	mux.HandleFunc("GET /api/canaries/{namespace}/{name}", s.handleCanary)
	mux.HandleFunc("GET /api/gitsyncs/{namespace}/{name}", s.handleGitSync)
	mux.HandleFunc("GET /api/delivery", s.handleDelivery)
	mux.HandleFunc("POST /api/canaries/{namespace}/{name}/{verb}", s.handleAction("Canary"))
	mux.HandleFunc("POST /api/gitsyncs/{namespace}/{name}/{verb}", s.handleAction("GitSync"))
	return hostCheck(s.opts.InCluster.hostAllowed, securityHeaders(s.withAuth(mux)))
}

// securityHeaders forbid inline scripts and styles, framing, MIME sniffing
// and leaking the URL (which names namespaces) to other sites.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// loopbackHost says whether a Host header names this machine's loopback.
// A page of another site that rebinds its DNS name to 127.0.0.1 sends its own
// name in Host, so checking it stops DNS rebinding.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostCheck(allowed func(string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) && !allowed(r.Host) {
			http.Error(w, "the dashboard answers only to localhost, 127.0.0.1, [::1] and its configured host names (Host header refused)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ensureSession gives the browser a session cookie (HttpOnly, SameSite=Strict)
// and returns its CSRF token.
func (s *Server) ensureSession(w http.ResponseWriter, r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, err := r.Cookie(sessionCookieName(r)); err == nil {
		if tok, ok := s.sessions[c.Value]; ok {
			return tok
		}
	}
	if len(s.sessions) >= maxSessions {
		// Any page can make the browser load this one: bound the memory. A
		// dropped session's page gets a new token when it reloads.
		for k := range s.sessions {
			delete(s.sessions, k)
			break
		}
	}
	id, tok := randomToken(), randomToken()
	s.sessions[id] = tok
	// Secure only over TLS: local mode is plain HTTP on loopback, where some
	// browsers would drop a Secure cookie and with it every action. The
	// cookie alone grants nothing: actions also need the token and the Origin.
	cookie := &http.Cookie{Name: sessionCookieName(r), Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode} //nolint:gosec // G124: Secure whenever the connection is TLS (see above).
	http.SetCookie(w, cookie)
	return tok
}

// csrfToken is the session's token, "" without a known session.
func (s *Server) csrfToken(r *http.Request) string {
	c, err := r.Cookie(sessionCookieName(r))
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

// handleSession gives the page its CSRF token and settings. Other origins
// cannot read it: the server sends no CORS headers.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	tok := s.ensureSession(w, r)
	body := map[string]any{"csrfToken": tok, "namespace": s.opts.Namespace, "actions": s.opts.Act != nil}
	if c := CallerFrom(r.Context()); c != nil {
		body["user"] = c.Name // in-cluster mode: who the page acts as
	}
	writeJSON(w, http.StatusOK, body)
}

// checkCSRF refuses a state-changing request that is not from the
// dashboard's own page: its Origin must be this server, and it must carry the
// session's token, which only a same-origin script can read.
func (s *Server) checkCSRF(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.New("missing Origin header: actions are accepted only from the dashboard's page")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("cross-origin request refused: actions are accepted only from the dashboard's page")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errors.New("cross-site request refused (Sec-Fetch-Site: " + site + ")")
	}
	want := s.csrfToken(r)
	got := r.Header.Get(csrfHeader)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return errors.New("missing or wrong CSRF token: reload the page and try again")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone: nothing to do
}

// apiError is the body of every failed API request.
type apiError struct {
	Error string `json:"error"`
	// Reason is "forbidden" when the API server refused the user (shown as
	// "not allowed"), "notFound", "invalid" or "failed".
	Reason string `json:"reason"`
}
