package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Provider types.
const (
	TypeSlack   = "slack"
	TypeMSTeams = "msteams"
	TypeDiscord = "discord"
	TypeRocket  = "rocket"
	TypeGChat   = "gchat"
	TypeGeneric = "generic"
)

// Types are the supported provider types.
var Types = []string{TypeSlack, TypeMSTeams, TypeDiscord, TypeRocket, TypeGChat, TypeGeneric}

// Defaults of AlertProvider.spec.
const (
	DefaultChannel  = "general"
	DefaultUsername = "sluice"
)

// Secret keys of AlertProvider.spec.secretRef.
const (
	SecretKeyAddress = "address"
	SecretKeyToken   = "token"
)

// ErrUnsupportedType is returned by New for an unknown provider type.
var ErrUnsupportedType = errors.New("unsupported AlertProvider type")

// settings are what the options set.
type settings struct {
	clients *Clients
	timeout time.Duration
	// slackAPIURL is the Slack Web API used with a bot token and no address.
	slackAPIURL string
}

// Option changes how New builds a notifier.
type Option func(*settings)

// WithClients shares the HTTP connections of c (the default is a package-wide set).
func WithClients(c *Clients) Option { return func(s *settings) { s.clients = c } }

// WithTimeout bounds each delivery attempt (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// config is an AlertProvider with its Secret resolved.
type config struct {
	typ      string
	channel  string
	username string
	address  string
	token    string
	proxy    string
	// usernameSet is true when spec.username was set (the Slack Web API
	// needs the chat:write.customize scope to use it).
	usernameSet bool
}

// New builds the notifier of an AlertProvider. The address comes from the
// Secret's key address when spec.secretRef is set (else spec.address), and
// the optional key token is a bearer token (for Slack, a bot token used with
// chat.postMessage). reader reads the Secret in the provider's namespace; use
// an uncached reader (the manager's APIReader) so Secrets are not cached.
// Errors never contain the address, the token or the proxy.
func New(ctx context.Context, reader client.Reader, provider *sluicev1beta1.AlertProvider, opts ...Option) (Notifier, error) {
	s := settings{clients: defaultClients, timeout: DefaultTimeout, slackAPIURL: "https://slack.com/api/"}
	for _, o := range opts {
		o(&s)
	}
	cfg, err := resolve(ctx, reader, provider)
	if err != nil {
		return nil, err
	}
	return build(cfg, s, providerKey(provider))
}

func providerKey(p *sluicev1beta1.AlertProvider) string {
	return types.NamespacedName{Namespace: p.Namespace, Name: p.Name}.String()
}

// resolve reads the provider's Secret and applies the defaults.
func resolve(ctx context.Context, reader client.Reader, p *sluicev1beta1.AlertProvider) (config, error) {
	if !validType(p.Spec.Type) {
		return config{}, fmt.Errorf("AlertProvider %s: %w %q: valid types are %s", providerKey(p), ErrUnsupportedType, p.Spec.Type, strings.Join(Types, ", "))
	}
	cfg := config{
		typ:      p.Spec.Type,
		channel:  p.Spec.Channel,
		username: p.Spec.Username,
		address:  strings.TrimSpace(p.Spec.Address),
		proxy:    strings.TrimSpace(p.Spec.Proxy),
	}
	if cfg.channel == "" {
		cfg.channel = DefaultChannel
	}
	cfg.usernameSet = cfg.username != ""
	if cfg.username == "" {
		cfg.username = DefaultUsername
	}
	if p.Spec.SecretRef != nil {
		if reader == nil {
			return config{}, fmt.Errorf("AlertProvider %s: no reader for its Secret", providerKey(p))
		}
		var secret corev1.Secret
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SecretRef.Name}
		if err := reader.Get(ctx, key, &secret); err != nil {
			// API errors name the Secret, never its data.
			return config{}, fmt.Errorf("AlertProvider %s: failed to read Secret %s: %w", providerKey(p), key, err)
		}
		if a := strings.TrimSpace(string(secret.Data[SecretKeyAddress])); a != "" {
			cfg.address = a
		}
		cfg.token = strings.TrimSpace(string(secret.Data[SecretKeyToken]))
	}
	if cfg.address == "" && (cfg.typ != TypeSlack || cfg.token == "") {
		return config{}, fmt.Errorf("AlertProvider %s has no address: set spec.address or the key %q of its Secret", providerKey(p), SecretKeyAddress)
	}
	if cfg.address != "" {
		u, err := url.Parse(cfg.address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config{}, fmt.Errorf("AlertProvider %s: the address is not a valid http(s) URL", providerKey(p))
		}
	}
	return cfg, nil
}

func validType(t string) bool {
	for _, v := range Types {
		if v == t {
			return true
		}
	}
	return false
}

// build makes the notifier of a resolved configuration.
func build(cfg config, s settings, key string) (Notifier, error) {
	hc, err := s.clients.client(cfg.proxy)
	if err != nil {
		return nil, fmt.Errorf("AlertProvider %s: %w", key, err)
	}
	p := &poster{
		provider: cfg.typ,
		client:   hc,
		address:  cfg.address,
		token:    cfg.token,
		timeout:  s.timeout,
		redact:   newRedactor(cfg.address, cfg.token, cfg.proxy),
	}
	switch cfg.typ {
	case TypeSlack:
		return newSlack(cfg, p, s.slackAPIURL), nil
	case TypeMSTeams:
		return &msteams{p: p}, nil
	case TypeDiscord:
		return &discord{p: p, username: cfg.username}, nil
	case TypeRocket:
		return &rocket{p: p, channel: cfg.channel, username: cfg.username}, nil
	case TypeGChat:
		return &gchat{p: p}, nil
	default:
		return &generic{p: p}, nil
	}
}
