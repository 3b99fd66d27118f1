package loadtester

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// AuthFile is the format of the file named by --auth-file (YAML or JSON),
// meant to be mounted from a Secret (never from flags):
//
//	clients:
//	- name: sluice            # identity, used in logs
//	  hmacKey: "s3cr3t"       # verifies X-Sluice-Signature (the hook's Secret key)
//	  namespaces: ["test"]    # canary namespaces this client may act on; "*" = all
//	                          # scopes: [check] is the default
//	- name: alice
//	  token: "long-random"    # accepted as "Authorization: Bearer long-random"
//	  grants:                 # per-namespace scopes
//	  - namespaces: ["test", "staging"]
//	    scopes: [check, operate]
//	  - namespaces: ["prod"]
//	    scopes: [check]
//
// A client has an hmacKey, a token, or both, and namespaces (with scopes),
// grants, or both.
type AuthFile struct {
	Clients []Client `json:"clients"`
}

// Scope is what a client may do in a namespace.
type Scope string

const (
	// ScopeCheck allows gate and rollback checks, /gate/approve|halt, and
	// tasks (load, commands): what Sluice's webhooks call.
	ScopeCheck Scope = "check"
	// ScopeOperate allows opening and closing gates and rollback flags: a
	// person's decision, so Sluice's own key does not get it by default.
	ScopeOperate Scope = "operate"
)

// Grant gives scopes in namespaces.
type Grant struct {
	// Namespaces are canary namespaces; "*" = all.
	Namespaces []string `json:"namespaces"`
	// Scopes default to [check].
	Scopes []Scope `json:"scopes,omitempty"`
}

// Client is one caller allowed to use the load tester.
type Client struct {
	Name    string `json:"name"`
	HMACKey string `json:"hmacKey,omitempty"`
	Token   string `json:"token,omitempty"`
	// Namespaces and Scopes are a shorthand for one grant.
	Namespaces []string `json:"namespaces,omitempty"`
	Scopes     []Scope  `json:"scopes,omitempty"`
	Grants     []Grant  `json:"grants,omitempty"`
}

// grants returns the shorthand grant and the explicit ones.
func (c *Client) grants() []Grant {
	gs := slices.Clone(c.Grants)
	if len(c.Namespaces) > 0 {
		gs = append(gs, Grant{Namespaces: c.Namespaces, Scopes: c.Scopes})
	}
	return gs
}

func (g *Grant) scopes() []Scope {
	if len(g.Scopes) == 0 {
		return []Scope{ScopeCheck}
	}
	return g.Scopes
}

// Allows tells whether the client has scope in canary namespace ns.
func (c *Client) Allows(scope Scope, ns string) bool {
	for _, g := range c.grants() {
		if (slices.Contains(g.Namespaces, "*") || slices.Contains(g.Namespaces, ns)) && slices.Contains(g.scopes(), scope) {
			return true
		}
	}
	return false
}

// HasScope tells whether the client has scope in some namespace.
func (c *Client) HasScope(scope Scope) bool {
	for _, g := range c.grants() {
		if slices.Contains(g.scopes(), scope) {
			return true
		}
	}
	return false
}

// ScopesIn lists the client's scopes in ns, for error messages.
func (c *Client) ScopesIn(ns string) []Scope {
	var out []Scope
	for _, s := range []Scope{ScopeCheck, ScopeOperate} {
		if c.Allows(s, ns) {
			out = append(out, s)
		}
	}
	return out
}

// ErrUnauthenticated is a request without valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator checks callers against the clients of an auth file.
type Authenticator struct {
	mu      sync.RWMutex
	clients []Client
	maxAge  time.Duration
	replay  webhooks.ReplayGuard
	now     func() time.Time
}

// LoadAuthFile reads and validates an auth file.
func LoadAuthFile(path string) (*AuthFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the auth file: %w", err)
	}
	var f AuthFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("failed to parse the auth file %s: %w", path, err)
	}
	return &f, f.Validate()
}

// Validate checks that every client has a name, a credential and grants of
// known scopes.
func (f *AuthFile) Validate() error {
	if len(f.Clients) == 0 {
		return errors.New("auth file: no clients: every call would be refused")
	}
	seen := map[string]bool{}
	for i, c := range f.Clients {
		switch {
		case c.Name == "":
			return fmt.Errorf("auth file: client %d has no name", i)
		case seen[c.Name]:
			return fmt.Errorf("auth file: duplicate client %q", c.Name)
		case c.HMACKey == "" && c.Token == "":
			return fmt.Errorf("auth file: client %q has neither hmacKey nor token", c.Name)
		case c.Token != "" && len(c.Token) < 16:
			return fmt.Errorf("auth file: client %q: token shorter than 16 characters", c.Name)
		case len(c.Scopes) > 0 && len(c.Namespaces) == 0:
			return fmt.Errorf("auth file: client %q has scopes but no namespaces", c.Name)
		case len(c.grants()) == 0:
			return fmt.Errorf("auth file: client %q has no namespaces", c.Name)
		}
		for j, g := range c.grants() {
			if len(g.Namespaces) == 0 {
				return fmt.Errorf("auth file: client %q: grant %d has no namespaces", c.Name, j)
			}
			for _, s := range g.Scopes {
				if s != ScopeCheck && s != ScopeOperate {
					return fmt.Errorf("auth file: client %q: unknown scope %q (want %s or %s)", c.Name, s, ScopeCheck, ScopeOperate)
				}
			}
		}
		seen[c.Name] = true
	}
	return nil
}

// NewAuthenticator returns an authenticator for the file's clients that
// refuses signatures more than maxAge away from the current time, and
// request ids that replay already remembers; a nil replay is an in-memory
// cache, which protects this replica only.
func NewAuthenticator(f *AuthFile, maxAge time.Duration, replay webhooks.ReplayGuard) (*Authenticator, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	if replay == nil {
		replay = webhooks.NewReplayCache(0)
	}
	return &Authenticator{clients: slices.Clone(f.Clients), maxAge: maxAge, replay: replay, now: time.Now}, nil
}

// Update replaces the clients, e.g. after the Secret behind the auth file
// was rotated. An invalid file leaves the clients unchanged.
func (a *Authenticator) Update(f *AuthFile) error {
	if err := f.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clients = slices.Clone(f.Clients)
	return nil
}

// Authenticate returns the client behind a request whose (already read) body
// is body: a valid X-Sluice-Signature for one of the HMAC keys, made for this
// method and path, whose request id was not seen before; or a bearer token.
// A request carrying a signature is judged on it alone.
func (a *Authenticator) Authenticate(r *http.Request, body []byte) (*Client, error) {
	a.mu.RLock()
	clients := a.clients
	a.mu.RUnlock()
	if sig := r.Header.Get(webhooks.SignatureHeader); sig != "" {
		c, parsed, err := a.verify(sig, clients, r, body)
		if err != nil {
			return nil, err
		}
		// Claimed only once verified, so that forged calls fill nothing.
		fresh, err := a.replay.Claim(r.Context(), c.Name+"/"+parsed.ID, a.now().Add(2*a.maxAge))
		if err != nil {
			return nil, fmt.Errorf("failed to record the request id: %w", err)
		}
		if !fresh {
			return nil, fmt.Errorf("%w: request id %q was already used (a replayed call)", ErrUnauthenticated, parsed.ID)
		}
		return c, nil
	}
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, fmt.Errorf("%w: send an %s header or an Authorization: Bearer token", ErrUnauthenticated, webhooks.SignatureHeader)
	}
	token = strings.TrimSpace(token)
	var found *Client
	for i := range clients {
		c := &clients[i]
		// Compare with every client, so the time does not tell which matched.
		if c.Token != "" && subtle.ConstantTimeCompare([]byte(c.Token), []byte(token)) == 1 && found == nil {
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: unknown bearer token", ErrUnauthenticated)
	}
	return found, nil
}

// verify returns the client whose HMAC key verifies sig for this request.
func (a *Authenticator) verify(sig string, clients []Client, r *http.Request, body []byte) (*Client, webhooks.Signature, error) {
	now := a.now()
	last := fmt.Errorf("%w: no client has an HMAC key", ErrUnauthenticated)
	for i := range clients {
		c := &clients[i]
		if c.HMACKey == "" {
			continue
		}
		parsed, err := webhooks.Verify(sig, []byte(c.HMACKey), r.Method, r.URL.RequestURI(), body, now, a.maxAge)
		if err == nil {
			return c, parsed, nil
		}
		last = fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return nil, webhooks.Signature{}, last
}
