package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// In-cluster mode authenticates every request: a bearer token is either a
// Kubernetes token (a ServiceAccount token from `kubectl create token`, or
// whatever the API server itself accepts), checked with a TokenReview, or an
// OIDC ID token from the one issuer the dashboard is configured to trust,
// verified here against the issuer's keys.

// Caller is the authenticated user of one request: the identity the
// dashboard impersonates on every API call it makes for that request.
type Caller struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Authenticator turns a bearer token into a Caller. A token it refuses
// yields an error wrapping ErrUnauthenticated; any other error means it
// could not decide (the API server or the issuer could not be reached).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Caller, error)
}

// ErrUnauthenticated marks a refused token. Its messages say why in terms a
// user can act on and never contain the token.
var ErrUnauthenticated = errors.New("the token was not accepted")

// TokenReviewAuthenticator asks the API server whether a token is valid
// (authentication.k8s.io/v1 TokenReview), with the dashboard's own identity.
type TokenReviewAuthenticator struct {
	// Client creates TokenReviews as the dashboard's ServiceAccount.
	Client client.Client
	// Audiences the token must be meant for; empty means the API server's own.
	Audiences []string
}

// Authenticate implements Authenticator.
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token string) (*Caller, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: a.Audiences}}
	if err := a.Client.Create(ctx, tr); err != nil {
		return nil, fmt.Errorf("failed to review the token with the API server: %w", err)
	}
	if !tr.Status.Authenticated {
		// status.error may describe the token; it is not repeated to the caller.
		return nil, fmt.Errorf("%w: the Kubernetes API server did not authenticate it (expired, revoked, for another audience, or not a token)", ErrUnauthenticated)
	}
	if len(a.Audiences) > 0 && !slices.ContainsFunc(tr.Status.Audiences, func(s string) bool { return slices.Contains(a.Audiences, s) }) {
		return nil, fmt.Errorf("%w: it is not meant for the audiences %s", ErrUnauthenticated, strings.Join(a.Audiences, ", "))
	}
	u := tr.Status.User
	c := &Caller{Name: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		c.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			c.Extra[k] = v
		}
	}
	return c, nil
}

// OIDCConfig configures the trusted OIDC issuer. The claims and prefixes
// mirror kube-apiserver's --oidc-* flags, so RBAC bindings written for the
// API server's OIDC users work unchanged through impersonation.
type OIDCConfig struct {
	// IssuerURL is the issuer; tokens whose "iss" is anything else go to TokenReview.
	IssuerURL string
	// ClientID is the audience every ID token must carry.
	ClientID string
	// UsernameClaim is the claim that names the user ("sub" if empty).
	UsernameClaim string
	// UsernamePrefix is prepended to the user name, so an ID token cannot
	// name a Kubernetes user such as system:admin. "-" means none.
	UsernamePrefix string
	// GroupsClaim is the claim that lists the groups ("" for none).
	GroupsClaim string
	// GroupsPrefix is prepended to every group (so no ID token can claim
	// system:masters). "-" means none.
	GroupsPrefix string
	// Now is the clock for expiry checks (tests); time.Now if nil.
	Now func() time.Time
}

// OIDCAuthenticator verifies ID tokens against the issuer's published keys.
// Discovery happens on first use and is retried on later tokens while it
// fails, so the dashboard starts even when the issuer is briefly down.
type OIDCAuthenticator struct {
	cfg OIDCConfig

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// NewOIDCAuthenticator checks the configuration.
func NewOIDCAuthenticator(cfg OIDCConfig) (*OIDCAuthenticator, error) {
	if cfg.IssuerURL == "" || cfg.ClientID == "" {
		return nil, errors.New("OIDC needs both an issuer URL and a client ID (the audience of the ID tokens)")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "sub"
	}
	return &OIDCAuthenticator{cfg: cfg}, nil
}

// Issuer is the issuer whose tokens this authenticator verifies.
func (a *OIDCAuthenticator) Issuer() string { return a.cfg.IssuerURL }

func (a *OIDCAuthenticator) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verifier != nil {
		return a.verifier, nil
	}
	// The provider's key set outlives this request: detach it from the
	// request's cancellation (go-oidc keeps the context for key refreshes).
	p, err := oidc.NewProvider(context.WithoutCancel(ctx), a.cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("failed to discover the OIDC issuer %s: %w", a.cfg.IssuerURL, err)
	}
	a.verifier = p.Verifier(&oidc.Config{ClientID: a.cfg.ClientID, Now: a.cfg.Now})
	return a.verifier, nil
}

// Authenticate implements Authenticator.
func (a *OIDCAuthenticator) Authenticate(ctx context.Context, token string) (*Caller, error) {
	v, err := a.verifierFor(ctx)
	if err != nil {
		return nil, err
	}
	idt, err := v.Verify(ctx, token)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, fmt.Errorf("%w: the ID token expired at %s", ErrUnauthenticated, expired.Expiry.UTC().Format(time.RFC3339))
		}
		// go-oidc's messages name the failed check (signature, audience,
		// issuer) but never the token.
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: its claims do not parse: %w", ErrUnauthenticated, err)
	}
	name, _ := claims[a.cfg.UsernameClaim].(string)
	if name == "" {
		return nil, fmt.Errorf("%w: the ID token has no %q claim", ErrUnauthenticated, a.cfg.UsernameClaim)
	}
	if a.cfg.UsernameClaim == "email" {
		// As kube-apiserver: an unverified address names nobody.
		if verified, ok := claims["email_verified"].(bool); ok && !verified {
			return nil, fmt.Errorf("%w: the ID token's email is not verified", ErrUnauthenticated)
		}
	}
	c := &Caller{Name: prefixed(a.cfg.UsernamePrefix, name)}
	if a.cfg.GroupsClaim != "" {
		switch g := claims[a.cfg.GroupsClaim].(type) {
		case string:
			c.Groups = []string{prefixed(a.cfg.GroupsPrefix, g)}
		case []any:
			for _, x := range g {
				if s, ok := x.(string); ok {
					c.Groups = append(c.Groups, prefixed(a.cfg.GroupsPrefix, s))
				}
			}
		}
	}
	return c, nil
}

func prefixed(prefix, s string) string {
	if prefix == "-" {
		return s
	}
	return prefix + s
}

// tokenIssuer reads the "iss" claim of a JWT without verifying it: only to
// choose which authenticator verifies the token. "" for anything else.
func tokenIssuer(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Issuer
}

// Authenticators chooses the authenticator of a token: the OIDC one for ID
// tokens of its issuer, TokenReview for everything else. It caches answers
// briefly (by the token's SHA-256, never the token itself), like the API
// server's own webhook token cache, so a page's requests do not each cost a
// TokenReview.
type Authenticators struct {
	// TokenReview checks Kubernetes tokens; nil refuses them.
	TokenReview Authenticator
	// OIDC verifies ID tokens of its issuer; nil when not configured.
	OIDC *OIDCAuthenticator
	// CacheTTL is how long an accepted token is not re-checked (10s if zero).
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedCaller
}

type cachedCaller struct {
	caller  *Caller
	expires time.Time
}

// maxCachedTokens bounds the cache; beyond it the cache is emptied.
const maxCachedTokens = 1024

// Authenticate implements Authenticator.
func (a *Authenticators) Authenticate(ctx context.Context, token string) (*Caller, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.caller, nil
	}
	a.mu.Unlock()

	var auth Authenticator
	if a.OIDC != nil && tokenIssuer(token) == a.OIDC.Issuer() {
		auth = a.OIDC
	} else if a.TokenReview != nil {
		auth = a.TokenReview
	}
	if auth == nil {
		return nil, fmt.Errorf("%w: only ID tokens of the configured OIDC issuer are accepted", ErrUnauthenticated)
	}
	c, err := auth.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	ttl := a.CacheTTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil || len(a.cache) >= maxCachedTokens {
		a.cache = map[[sha256.Size]byte]cachedCaller{}
	}
	a.cache[key] = cachedCaller{caller: c, expires: now.Add(ttl)}
	return c, nil
}
