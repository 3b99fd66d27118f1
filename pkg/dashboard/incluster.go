package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// The in-cluster dashboard runs as its own ServiceAccount, which may only
// review tokens and impersonate: every read, watch and action of a request
// is made as the authenticated caller, so the API server applies the
// caller's RBAC and the dashboard's own identity sees nothing.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=users;groups;serviceaccounts,verbs=impersonate
// Extra keys are checked as userextras/<key> (ServiceAccount tokens carry
// authentication.kubernetes.io/credential-id and others), and RBAC has no
// wildcard for subresources of one resource: "*" in authentication.k8s.io
// covers them and uids, with the impersonate verb only.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=*,verbs=impersonate

// InClusterOptions turn a Server into the in-cluster dashboard: every request
// must carry a token, and every API call is made as its caller.
type InClusterOptions struct {
	// Authenticator checks the bearer tokens (Authenticators: TokenReview and OIDC).
	Authenticator Authenticator
	// Config is the dashboard's own client configuration; each request gets
	// a copy that impersonates its caller (user, UID, groups, extra).
	Config *rest.Config
	// ClientOptions carry the scheme and a shared REST mapper for those clients.
	ClientOptions client.Options
	// AllowedHosts are the Host names served besides loopback (the Service's
	// DNS names, the proxy's public name): the DNS-rebinding check.
	AllowedHosts []string
	// FailedAuthBurst failed authentications are allowed per client address,
	// then one per FailedAuthEvery (defaults 10 and 6s).
	FailedAuthBurst int
	FailedAuthEvery time.Duration
	// RecheckEvery is how often the token of an open live stream is checked
	// again (1m if zero): a stream ends soon after its token expires or is
	// revoked instead of relaying changes for as long as the page stays open.
	RecheckEvery time.Duration
}

func (o *InClusterOptions) prepare() error {
	switch {
	case o.Authenticator == nil:
		return errors.New("the in-cluster dashboard needs an authenticator")
	case o.Config == nil:
		return errors.New("the in-cluster dashboard needs its own client configuration (to impersonate callers)")
	case o.ClientOptions.Scheme == nil:
		return errors.New("the in-cluster dashboard needs a scheme for its clients")
	}
	if o.ClientOptions.Mapper == nil {
		// One mapper for all callers: discovery once, not per request.
		hc, err := rest.HTTPClientFor(o.Config)
		if err != nil {
			return fmt.Errorf("failed to create the HTTP client: %w", err)
		}
		if o.ClientOptions.Mapper, err = apiutil.NewDynamicRESTMapper(o.Config, hc); err != nil {
			return fmt.Errorf("failed to create the REST mapper: %w", err)
		}
	}
	return nil
}

// hostAllowed says whether a non-loopback Host is one of AllowedHosts (any port).
func (o *InClusterOptions) hostAllowed(host string) bool {
	if o == nil {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, a := range o.AllowedHosts {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// tokenCookie holds the token of a browser that logged in. It is HttpOnly
// (scripts, and so injected scripts, cannot read it), SameSite=Strict (no
// other site's page makes the browser send it) and always Secure: browsers
// keep it over HTTPS and on localhost (port-forward) only, so a token never
// travels in clear text to a remote plain-HTTP address. A
// cookie, not sessionStorage, because EventSource (the live stream) cannot
// send an Authorization header, and a token in the URL would end up in logs.
const tokenCookie = "sluice_dashboard_token"

// maxCookieToken is the longest token kept in a cookie (browsers keep at
// most about 4 KiB per cookie); longer tokens work as Authorization headers.
const maxCookieToken = 3800

// maxTokenLen bounds any token read from a request.
const maxTokenLen = 16 << 10

// maxRequestBody bounds every request body (the dashboard's requests have none).
const maxRequestBody = 64 << 10

type callerKey struct{}

type callerContext struct {
	caller *Caller
	client client.WithWatch
}

// CallerFrom is the authenticated caller of a request's context, nil in
// local mode.
func CallerFrom(ctx context.Context) *Caller {
	if v, ok := ctx.Value(callerKey{}).(*callerContext); ok {
		return v.caller
	}
	return nil
}

// authGate authenticates requests and limits failed attempts per client.
type authGate struct {
	opts *InClusterOptions

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// maxLimiters bounds the per-address limiters; beyond it the full ones go.
const maxLimiters = 4096

func newAuthGate(o *InClusterOptions) *authGate {
	if o.FailedAuthBurst == 0 {
		o.FailedAuthBurst = 10
	}
	if o.FailedAuthEvery == 0 {
		o.FailedAuthEvery = 6 * time.Second
	}
	if o.RecheckEvery == 0 {
		o.RecheckEvery = time.Minute
	}
	return &authGate{opts: o, limiters: map[string]*rate.Limiter{}}
}

// limiter is the failure budget of a client address. Behind a proxy every
// caller shares the proxy's address: rate-limit at the proxy too.
func (g *authGate) limiter(r *http.Request) *rate.Limiter {
	addr := r.RemoteAddr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if l, ok := g.limiters[addr]; ok {
		return l
	}
	if len(g.limiters) >= maxLimiters {
		for k, l := range g.limiters {
			if l.Tokens() >= float64(g.opts.FailedAuthBurst) {
				delete(g.limiters, k)
			}
		}
	}
	l := rate.NewLimiter(rate.Every(g.opts.FailedAuthEvery), g.opts.FailedAuthBurst)
	if len(g.limiters) < maxLimiters {
		g.limiters[addr] = l
	}
	return l
}

// errTooManyFailures refuses a client that failed too often.
var errTooManyFailures = errors.New("too many failed authentications from this address: wait a minute and try again")

// authenticate checks a token, counting refusals against the client's budget.
func (g *authGate) authenticate(r *http.Request, token string) (*Caller, error) {
	l := g.limiter(r)
	if l.Tokens() < 1 {
		return nil, errTooManyFailures
	}
	if len(token) > maxTokenLen {
		l.Allow()
		return nil, fmt.Errorf("%w: it is longer than %d bytes", ErrUnauthenticated, maxTokenLen)
	}
	c, err := g.opts.Authenticator.Authenticate(r.Context(), token)
	if errors.Is(err, ErrUnauthenticated) {
		l.Allow()
	}
	return c, err
}

// clientFor is a client that impersonates the caller. Nothing is shared
// between callers but the connection pool and the REST mapper, so one
// caller's lists and watches never serve another.
func (g *authGate) clientFor(c *Caller) (client.WithWatch, error) {
	cfg := rest.CopyConfig(g.opts.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: c.Name, UID: c.UID, Groups: c.Groups, Extra: c.Extra}
	cl, err := client.NewWithWatch(cfg, g.opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("failed to create a client for the caller: %w", err)
	}
	return cl, nil
}

// recheck ends a long-lived request (the live stream) once its token is no
// longer accepted. The page's EventSource reconnects, gets 401 and shows it.
func (g *authGate) recheck(ctx context.Context, cancel context.CancelFunc, token string) {
	t := time.NewTicker(g.opts.RecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.opts.Authenticator.Authenticate(ctx, token); errors.Is(err, ErrUnauthenticated) {
				cancel()
				return
			}
		}
	}
}

// bearerToken is the request's token: the Authorization header (API
// clients), else the login cookie (the browser).
func bearerToken(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// withAuth authenticates every request in in-cluster mode; only the static
// assets (no data) and the login and logout endpoints are open.
func (s *Server) withAuth(next http.Handler) http.Handler {
	if s.gate == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/assets/"):
			next.ServeHTTP(w, r)
			return
		case r.URL.Path == "/api/login":
			s.handleLogin(w, r)
			return
		case r.URL.Path == "/api/logout":
			s.handleLogout(w, r)
			return
		}
		token, fromCookie := bearerToken(r)
		if token == "" {
			s.unauthenticated(w, r, http.StatusUnauthorized, "authentication required: send a bearer token (see the login page)")
			return
		}
		caller, err := s.gate.authenticate(r, token)
		if err != nil {
			if fromCookie {
				s.clearTokenCookie(w, r)
			}
			s.authFailed(w, r, err)
			return
		}
		cl, err := s.gate.clientFor(caller)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ctx, cancel := context.WithCancel(context.WithValue(r.Context(), callerKey{}, &callerContext{caller: caller, client: cl}))
		defer cancel()
		if r.URL.Path == "/api/events" {
			go s.gate.recheck(ctx, cancel, token)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authFailed answers a refused or undecidable authentication.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errTooManyFailures):
		w.Header().Set("Retry-After", strconv.Itoa(int(s.gate.opts.FailedAuthEvery.Seconds())+1))
		s.opts.Log.Info("Refusing a client after repeated failed authentications", "remoteAddr", r.RemoteAddr)
		s.unauthenticated(w, r, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrUnauthenticated):
		s.opts.Log.Info("Authentication failed", "remoteAddr", r.RemoteAddr, "reason", err.Error())
		s.unauthenticated(w, r, http.StatusUnauthorized, err.Error())
	default:
		s.opts.Log.Error(err, "Could not check a token", "remoteAddr", r.RemoteAddr)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the token could not be checked: " + err.Error(), Reason: "failed"})
	}
}

// unauthenticated answers with the login page for the page itself and JSON
// for API requests.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-dashboard"`)
	}
	if r.Method == http.MethodGet && r.URL.Path == "/" {
		page, err := fs.ReadFile(assets, "assets/login.html")
		if err == nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(code)
			_, _ = w.Write(page)
			return
		}
	}
	writeJSON(w, code, apiError{Error: msg, Reason: "unauthenticated"})
}

// sameOrigin refuses a login or logout from another site's page (login CSRF:
// logging the victim in as the attacker).
func sameOrigin(r *http.Request) error {
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || r.Header.Get("Origin") == "" || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("cross-origin request refused: log in from the dashboard's page")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errors.New("cross-site request refused (Sec-Fetch-Site: " + site + ")")
	}
	return nil
}

// handleLogin checks the token of the Authorization header and keeps it in
// the HttpOnly cookie, so the browser's later requests and the live stream
// carry it.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "log in with POST", Reason: "invalid"})
		return
	}
	if err := sameOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{Error: err.Error(), Reason: "csrf"})
		return
	}
	token, _ := bearerToken(r)
	if token == "" {
		s.unauthenticated(w, r, http.StatusUnauthorized, "paste a token: the login sends it as an Authorization: Bearer header")
		return
	}
	if len(token) > maxCookieToken {
		writeJSON(w, http.StatusBadRequest, apiError{Reason: "invalid", Error: fmt.Sprintf(
			"the token is %d bytes, longer than a browser cookie holds (%d): use a shorter-lived token or send it as an Authorization header", len(token), maxCookieToken)})
		return
	}
	caller, err := s.gate.authenticate(r, token)
	if err != nil {
		s.authFailed(w, r, err)
		return
	}
	s.opts.Log.Info("Dashboard login", "user", caller.Name)
	s.setTokenCookie(w, r, token, 0)
	writeJSON(w, http.StatusOK, map[string]string{"user": caller.Name})
}

// handleLogout forgets the browser's token.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "log out with POST", Reason: "invalid"})
		return
	}
	if err := sameOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{Error: err.Error(), Reason: "csrf"})
		return
	}
	s.clearTokenCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clearTokenCookie(w http.ResponseWriter, r *http.Request) {
	s.setTokenCookie(w, r, "", -1)
}

// setTokenCookie writes the token cookie: a session cookie (gone when the
// browser closes), maxAge -1 deletes it. Secure even when this server sees
// plain HTTP: TLS may end at a proxy, and on localhost browsers accept it.
func (s *Server) setTokenCookie(w http.ResponseWriter, r *http.Request, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: true, SameSite: http.SameSiteStrictMode})
}
