package router

import (
	"fmt"
	"reflect"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Capability is an optional thing a router can do, declared by a marker
// interface (WeightedRouter, MatchRouter, ...). The capabilities are read
// from the routers themselves, so the docs table (docs/routers.md, generated
// by hack/routerdocs) and the Stalled messages cannot drift from the code.
type Capability string

// The capabilities, in the order of the docs table.
const (
	CapabilityWeights         Capability = "weights"
	CapabilityMatch           Capability = "match"
	CapabilityMirror          Capability = "mirror"
	CapabilitySessionAffinity Capability = "session-affinity"
	CapabilityBaseline        Capability = "baseline"
)

// capabilities pairs each capability with its marker interface check and a
// column title. A new optional interface is one more line here.
var capabilities = []struct {
	cap   Capability
	title string
	has   func(Router) bool
}{
	{CapabilityWeights, "weights", func(rt Router) bool { _, ok := rt.(WeightedRouter); return ok }},
	{CapabilityMatch, "A/B match (headers, cookies)", func(rt Router) bool { _, ok := rt.(MatchRouter); return ok }},
	{CapabilityMirror, "mirror", func(rt Router) bool { _, ok := rt.(MirrorRouter); return ok }},
	{CapabilitySessionAffinity, "session affinity", func(rt Router) bool { _, ok := rt.(SessionAffinityRouter); return ok }},
	{CapabilityBaseline, "baseline (three-way split)", func(rt Router) bool { _, ok := rt.(BaselineRouter); return ok }},
}

// AllCapabilities lists every capability with its column title, in table order.
func AllCapabilities() (caps []Capability, titles []string) {
	for _, c := range capabilities {
		caps = append(caps, c.cap)
		titles = append(titles, c.title)
	}
	return caps, titles
}

// Capabilities lists what rt declares it can do, in table order.
func Capabilities(rt Router) []Capability {
	var out []Capability
	for _, c := range capabilities {
		if c.has(rt) {
			out = append(out, c.cap)
		}
	}
	return out
}

// Has tells whether rt declares a capability.
func Has(rt Router, capability Capability) bool {
	for _, c := range capabilities {
		if c.cap == capability {
			return c.has(rt)
		}
	}
	return false
}

// WithoutBlueGreen is declared by a router that cannot run blue/green
// although it can send all traffic to one side: blue/green analyses a canary
// that gets no user traffic through <svc>-canary, which a router whose
// target has no such Service (knative: a revision has none) cannot offer.
type WithoutBlueGreen interface{ WithoutBlueGreen() }

// Strategies lists the release strategies rt can run: blue/green unless it
// declares WithoutBlueGreen (every other router can send all traffic to one
// side), a progressive canary with weights, A/B testing with request
// matching.
func Strategies(rt Router) []sluicev1beta1.DeploymentStrategy {
	var out []sluicev1beta1.DeploymentStrategy
	if Has(rt, CapabilityWeights) {
		out = append(out, sluicev1beta1.StrategyCanary)
	}
	if _, without := rt.(WithoutBlueGreen); !without {
		out = append(out, sluicev1beta1.StrategyBlueGreen)
	}
	if Has(rt, CapabilityMatch) {
		out = append(out, sluicev1beta1.StrategyABTesting)
	}
	return out
}

// Supported describes what rt supports, for messages: its strategies and capabilities.
func Supported(rt Router) string {
	strategies := Strategies(rt)
	s := make([]string, 0, len(strategies))
	for _, st := range strategies {
		s = append(s, string(st))
	}
	caps := Capabilities(rt)
	c := make([]string, 0, len(caps))
	for _, cp := range caps {
		c = append(c, string(cp))
	}
	if len(c) == 0 {
		c = append(c, "none")
	}
	return fmt.Sprintf("strategies %s; capabilities %s", strings.Join(s, ", "), strings.Join(c, ", "))
}

// Describer is implemented by routers that describe their routing objects
// for the docs table (e.g. "TraefikService `<svc>`").
type Describer interface {
	RoutingObjects() string
}

// SpecChecker is implemented by routers that need more of a Canary than a
// capability, e.g. spec.ingressRef: CheckSpec returns messages a user can
// act on, reported with the unsupported features (Stalled).
type SpecChecker interface {
	CheckSpec(c *sluicev1beta1.Canary) []string
}

// CanaryCapabilities is a router whose capabilities depend on the Canary,
// not only on its type (the gatewayapi router's GRPCRoute and user-owned
// route variants): it lists what this Canary asks that it cannot do, as
// messages a user can act on, which Unsupported adds to its own. It is
// SpecChecker with the provider name, which the variants' messages need
// (gatewayapi, gatewayapi:v1, ...); both feed the one unsupported() path.
type CanaryCapabilities interface {
	UnsupportedFor(c *sluicev1beta1.Canary, provider string) []string
}

// Provider is one row of the capability table: the provider names sharing a
// router (aliases), what it writes and what it supports.
type Provider struct {
	Names        []string
	Objects      string
	Capabilities []Capability
	Strategies   []sluicev1beta1.DeploymentStrategy
}

// Providers describes the registered routers, one entry per router type
// (aliases such as gatewayapi:v1 share the entry of gatewayapi), sorted by
// the first name. Routers are built without a client: a factory must not use
// it when building.
func (r *Registry) Providers() []Provider {
	var out []Provider
	index := map[string]int{}
	for _, n := range r.Names() {
		rt := r.factories[n](nil)
		objects := ""
		if d, ok := rt.(Describer); ok {
			objects = d.RoutingObjects()
		}
		key := fmt.Sprintf("%v|%s|%v", reflect.TypeOf(rt), objects, Capabilities(rt))
		if i, ok := index[key]; ok {
			out[i].Names = append(out[i].Names, n)
			continue
		}
		index[key] = len(out)
		out = append(out, Provider{Names: []string{n}, Objects: objects, Capabilities: Capabilities(rt), Strategies: Strategies(rt)})
	}
	return out
}

// providersWith lists the registered provider names whose router has a capability.
func (r *Registry) providersWith(capability Capability) []string {
	var out []string
	for _, n := range r.Names() {
		if Has(r.factories[n](nil), capability) {
			out = append(out, n)
		}
	}
	return out
}

// Unsupported is the package Unsupported, with each message also naming the
// registered providers that have the missing capability.
func (r *Registry) Unsupported(rt Router, c *sluicev1beta1.Canary, provider string) []string {
	return unsupported(rt, c, provider, r.providersWith)
}

// unsupported lists what c asks of rt that rt cannot do; with, when set,
// names the providers that can.
func unsupported(rt Router, c *sluicev1beta1.Canary, provider string, with func(Capability) []string) []string {
	var out []string
	a := c.Spec.Analysis
	if a == nil {
		return nil
	}
	if with == nil { // no registry: name the baseline routers Sluice ships
		with = func(capability Capability) []string {
			if capability == CapabilityBaseline {
				return BaselineProviders
			}
			return nil
		}
	}
	add := func(capability Capability, msg string) {
		msg = fmt.Sprintf("%s (provider %s supports %s", msg, provider, Supported(rt))
		if with != nil {
			if names := with(capability); len(names) > 0 {
				msg += fmt.Sprintf("; providers with %s: %s", capability, strings.Join(names, ", "))
			}
		}
		out = append(out, msg+")")
	}
	switch c.Strategy(provider) {
	case sluicev1beta1.StrategyCanary:
		if !Has(rt, CapabilityWeights) {
			add(CapabilityWeights, fmt.Sprintf("provider %s cannot split traffic by weight: use iterations (blue/green) instead of stepWeight", provider))
		}
	case sluicev1beta1.StrategyABTesting:
		if !Has(rt, CapabilityMatch) {
			add(CapabilityMatch, fmt.Sprintf("provider %s cannot route by request match: remove analysis.match or use a provider with A/B testing", provider))
		}
	}
	if a.Baseline {
		if !Has(rt, CapabilityBaseline) {
			add(CapabilityBaseline, fmt.Sprintf("provider %s cannot split traffic three ways (primary, baseline, canary): remove analysis.baseline or use a provider that can", provider))
		} else if c.Strategy(provider) != sluicev1beta1.StrategyCanary {
			out = append(out, "analysis.baseline needs the progressive canary strategy (stepWeight or stepWeights): blue/green and A/B testing send the canary no weight a baseline could share")
		}
	}
	if a.Mirror && !Has(rt, CapabilityMirror) {
		add(CapabilityMirror, fmt.Sprintf("provider %s cannot mirror traffic: remove analysis.mirror", provider))
	}
	if a.SessionAffinity != nil && !Has(rt, CapabilitySessionAffinity) {
		add(CapabilitySessionAffinity, fmt.Sprintf("provider %s has no session affinity: remove analysis.sessionAffinity", provider))
	}
	if sc, ok := rt.(SpecChecker); ok {
		out = append(out, sc.CheckSpec(c)...)
	}
	if cc, ok := rt.(CanaryCapabilities); ok { // the Canary's variant (GRPCRoute, user-owned route)
		out = append(out, cc.UnsupportedFor(c, provider)...)
	}
	return out
}
