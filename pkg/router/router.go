// Package router turns the canary engine's traffic decision (primary and
// canary weights, mirroring) into routing objects of a mesh or ingress
// provider. Each provider is a Router; optional capabilities are separate
// interfaces checked by type assertion. Providers are registered explicitly
// in a Registry built by the manager.
package router

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Routes is where traffic goes: weights in percent (summing to 100) and
// whether the canary receives a mirrored copy of the primary's traffic.
type Routes struct {
	PrimaryWeight int32
	CanaryWeight  int32
	// BaselineWeight is the baseline's share (spec.analysis.baseline),
	// set only for a BaselineRouter; 0 means the routes carry no baseline
	// backend at all.
	BaselineWeight int32
	Mirrored       bool
}

// String formats routes for messages.
func (r Routes) String() string {
	s := fmt.Sprintf("primary %d%%, canary %d%%", r.PrimaryWeight, r.CanaryWeight)
	if r.BaselineWeight > 0 {
		s = fmt.Sprintf("primary %d%%, baseline %d%%, canary %d%%", r.PrimaryWeight, r.BaselineWeight, r.CanaryWeight)
	}
	if r.Mirrored {
		s += ", mirrored"
	}
	return s
}

// Router drives the routing objects of one provider for a Canary.
type Router interface {
	// Reconcile creates or updates the routing objects without changing
	// the weights they currently hold (primary 100% when created).
	Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error
	// SetRoutes sets the weights and mirroring.
	SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, r Routes) error
	// GetRoutes reads the weights back from the routing objects.
	GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (Routes, error)
	// Finalize leaves the routing serving the apex Service only, when the
	// Canary is deleted: objects that existed before Sluice get their
	// original spec back, objects Sluice created are rewritten to send all
	// traffic to the apex Service and released from the Canary's ownership
	// (so they outlive it), absent objects are left absent. It is
	// idempotent. See the package function Finalize.
	Finalize(ctx context.Context, c *sluicev1beta1.Canary) error
}

// WeightedRouter is a router that can split traffic by weight (progressive canary).
type WeightedRouter interface {
	Router
	SupportsWeights()
}

// MatchRouter is a router that can send matching requests to the canary (A/B testing).
type MatchRouter interface {
	Router
	SupportsMatch()
}

// MirrorRouter is a router that can mirror traffic to the canary.
type MirrorRouter interface {
	Router
	SupportsMirror()
}

// SessionAffinityRouter is a router that can pin users to the canary by cookie.
type SessionAffinityRouter interface {
	Router
	SupportsSessionAffinity()
}

// BaselineRouter is a router that can split traffic three ways: primary,
// baseline and canary (spec.analysis.baseline). SetRoutes routes
// Routes.BaselineWeight to the baseline Service (the Canary's
// BaselineServiceName) while it is above 0, and the routing objects carry
// no baseline backend when it is 0; GetRoutes reads it back.
type BaselineRouter interface {
	Router
	SupportsBaseline()
}

// BaselineProviders are the providers whose routers are BaselineRouters,
// named in the message of a Canary that asks for a baseline elsewhere
// (cmd/sluice tests that the list matches the registry).
var BaselineProviders = []string{"gatewayapi", "istio", "traefik"}

// Factory builds a provider's router with the manager's client (cached reads).
type Factory func(c client.Client) Router

// Registry maps provider names to router factories.
type Registry struct {
	factories map[string]Factory
	// builtins are the builtin metrics' query templates by provider name.
	builtins map[string]map[string]string
	// unavailable says, by provider name, why a provider has no builtin
	// metrics although its router is registered.
	unavailable map[string]string
	kinds       []client.Object
	// Client, when set, is the client routers get instead of the one given
	// to New: the manager's cache-backed client with unstructured objects
	// cached too.
	Client client.Client
	// Live reads the objects the manager's cache does not hold (the API
	// reader); nil reads only through the client given to New.
	Live client.Reader
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, builtins: map[string]map[string]string{}, unavailable: map[string]string{}}
}

// Register adds a provider under one or more names (aliases such as gatewayapi:v1).
func (r *Registry) Register(f Factory, names ...string) {
	for _, n := range names {
		r.factories[n] = f
	}
}

// RegisterMetrics adds the builtin metrics of a provider (metric name to
// Prometheus query template, rendered by pkg/metrics) under one or more
// names. A router measures its own canary: the queries name the series its
// data plane emits, so they belong beside the router, not in pkg/metrics.
func (r *Registry) RegisterMetrics(queries map[string]string, names ...string) {
	for _, n := range names {
		r.builtins[n] = queries
		delete(r.unavailable, n)
	}
}

// RegisterMetricsUnavailable records, under one or more names, why a
// provider has no builtin metrics in this configuration (say, its data
// plane's series cannot tell the canary from the primary); BuiltinQuery
// then returns that reason with the advice to use a MetricTemplate.
func (r *Registry) RegisterMetricsUnavailable(reason string, names ...string) {
	for _, n := range names {
		delete(r.builtins, n)
		r.unavailable[n] = reason
	}
}

// BuiltinQuery returns the query template of a builtin metric for a
// provider; it implements pkg/metrics.BuiltinQueries.
func (r *Registry) BuiltinQuery(provider, metric string) (string, error) {
	qs, ok := r.builtins[provider]
	if why, unavailable := r.unavailable[provider]; !ok && unavailable {
		return "", fmt.Errorf("provider %s has no builtin metric %s: %s; measure it with a MetricTemplate (templateRef)", provider, metric, why)
	}
	if !ok {
		return "", fmt.Errorf("provider %s has no builtin metric %s: measure it with a MetricTemplate (templateRef)", provider, metric)
	}
	q, ok := qs[metric]
	if !ok {
		names := make([]string, 0, len(qs))
		for n := range qs {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("%s is not a builtin metric of provider %s: use %s or a MetricTemplate", metric, provider, strings.Join(names, ", "))
	}
	return q, nil
}

// Names lists the registered provider names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownProvider is returned for a provider that is not registered.
var ErrUnknownProvider = errors.New("unknown provider")

// New builds the router of a provider. An unknown provider is an error that
// names the supported ones; there is no default.
func (r *Registry) New(provider string, c client.Client) (Router, error) {
	f, ok := r.factories[provider]
	if !ok {
		return nil, fmt.Errorf("%w %q: this controller supports %s", ErrUnknownProvider, provider, strings.Join(r.Names(), ", "))
	}
	return f(r.routerClient(c)), nil
}

// Unsupported lists what a Canary asks of its router that the router cannot
// do, as messages a user can act on, each naming what the router supports
// (Supported); empty means the router fits. Registry.Unsupported also names
// the providers that can.
func Unsupported(rt Router, c *sluicev1beta1.Canary, provider string) []string {
	return unsupported(rt, c, provider, nil)
}
