package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Provider answers the queries of one metrics backend. Prometheus is in this
// package; every other backend has its own package under pkg/metrics and is
// registered by the manager in a Providers map.
type Provider interface {
	// Query runs one query and returns its one value: ErrNoData when the
	// backend has none (no series, an empty answer, NaN), a
	// *MultipleSeriesError when it has several and cannot pick, any other
	// error when the query failed. Errors never hold credentials.
	Query(ctx context.Context, query string) (float64, error)
}

// ProviderConfig is a MetricTemplate's provider section with its Secret
// read: what a Factory builds a client from.
type ProviderConfig struct {
	// Type is spec.provider.type.
	Type string
	// Address is spec.provider.address; for Prometheus, the Canary's
	// metricsServer or --metrics-server when the template has none. Empty
	// means the provider's documented default endpoint, where it has one.
	Address string
	// Headers are added to every request.
	Headers http.Header
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool
	// Region is spec.provider.region (CloudWatch, and other regional APIs).
	Region string
	// Secret is the data of spec.provider.secretRef's Secret; nil without one.
	Secret map[string][]byte
	// Method and Body are spec.provider.method and body (web), the body
	// rendered like the query.
	Method, Body string
}

// ErrInvalidConfig is a provider configuration a Factory cannot use: a
// missing Secret key, an address it cannot parse, a missing region. The
// message names what to fix, never a credential.
var ErrInvalidConfig = errors.New("invalid provider configuration")

// Factory builds the client of one provider type from its configuration. It
// validates the configuration (errors wrap ErrInvalidConfig) and makes no
// request: the client is cached by the Checker until the template, its
// Secret or the address changes.
type Factory func(ctx context.Context, cfg ProviderConfig) (Provider, error)

// Providers maps MetricTemplate provider types to the factories of their
// clients. The manager builds it explicitly (cmd/sluice); a type missing from
// it is an UnsupportedProvider error, never a silent default.
type Providers map[string]Factory

// Types lists the registered types, sorted.
func (p Providers) Types() []string {
	out := make([]string, 0, len(p))
	for t := range p {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// DefaultProviders is the registry with Prometheus only, for tests and
// tools that need no other backend.
func DefaultProviders() Providers { return Providers{"prometheus": NewPrometheusProvider} }

// BuiltinQueries returns the Prometheus query template of a builtin metric
// (request-success-rate, request-duration) for a traffic provider. The
// router registry implements it: each router registers the queries that
// measure its canary, so that adding a router never means editing this
// package.
type BuiltinQueries interface {
	BuiltinQuery(provider, metric string) (string, error)
}

// NewPrometheusProvider builds a Prometheus client (also Thanos, Mimir,
// Cortex and VictoriaMetrics, which serve its query API). The Secret holds
// token, or username and password.
func NewPrometheusProvider(_ context.Context, cfg ProviderConfig) (Provider, error) {
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: no Prometheus address: set --metrics-server, spec.metricsServer or the MetricTemplate's provider.address", ErrInvalidConfig)
	}
	pc := PrometheusConfig{Address: cfg.Address, Headers: cfg.Headers, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.Secret != nil {
		pc.Credentials = Credentials{BearerToken: string(cfg.Secret["token"]),
			Username: string(cfg.Secret["username"]), Password: string(cfg.Secret["password"])}
		if pc.Credentials == (Credentials{}) {
			return nil, fmt.Errorf("%w: the Secret has neither the key token nor username and password", ErrInvalidConfig)
		}
	}
	p, err := NewPrometheus(pc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return p, nil
}

// secretValues are the values to remove from texts shown to people: every
// value of the provider's Secret.
func secretValues(data map[string][]byte) []string {
	out := make([]string, 0, len(data))
	for _, v := range data {
		if s := strings.TrimSpace(string(v)); s != "" {
			out = append(out, s)
		}
	}
	return out
}
