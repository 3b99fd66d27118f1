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
// meant to be mounted from a Secret:
//
//	clients:
//	- name: sluice            # identity, used in logs
//	  hmacKey: "s3cr3t"       # verifies X-Sluice-Signature (the hook's Secret key)
//	  namespaces: ["test"]    # canary namespaces this client may act on; "*" = all
//	- name: release-bot
//	  token: "long-random"    # accepted as "Authorization: Bearer long-random"
//	  namespaces: ["test", "staging"]
//
// A client has an hmacKey, a token, or both.
type AuthFile struct {
	Clients []Client `json:"clients"`
}

// Client is one caller allowed to use the load tester.
type Client struct {
	Name       string   `json:"name"`
	HMACKey    string   `json:"hmacKey,omitempty"`
	Token      string   `json:"token,omitempty"`
	Namespaces []string `json:"namespaces"`
}

// AllowsNamespace tells whether the client may act on canaries in ns.
func (c *Client) AllowsNamespace(ns string) bool {
	return slices.Contains(c.Namespaces, "*") || slices.Contains(c.Namespaces, ns)
}

// ErrUnauthenticated is a request without valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator checks callers against the clients of an auth file.
type Authenticator struct {
	mu      sync.RWMutex
	clients []Client
	maxAge  time.Duration
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

// Validate checks that every client has a name, a credential and namespaces.
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
		case len(c.Namespaces) == 0:
			return fmt.Errorf("auth file: client %q has no namespaces", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// NewAuthenticator returns an authenticator for the file's clients that
// refuses signatures more than maxAge away from the current time.
func NewAuthenticator(f *AuthFile, maxAge time.Duration) (*Authenticator, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	return &Authenticator{clients: slices.Clone(f.Clients), maxAge: maxAge, now: time.Now}, nil
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
// is body: a valid X-Sluice-Signature for one of the HMAC keys, or a bearer
// token. A request carrying a signature is judged on it alone.
func (a *Authenticator) Authenticate(r *http.Request, body []byte) (*Client, error) {
	a.mu.RLock()
	clients := a.clients
	a.mu.RUnlock()
	if sig := r.Header.Get(webhooks.SignatureHeader); sig != "" {
		now := a.now()
		last := fmt.Errorf("%w: no client has an HMAC key", ErrUnauthenticated)
		for i := range clients {
			c := &clients[i]
			if c.HMACKey == "" {
				continue
			}
			err := webhooks.Verify(sig, []byte(c.HMACKey), body, now, a.maxAge)
			if err == nil {
				return c, nil
			}
			last = fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		return nil, last
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
