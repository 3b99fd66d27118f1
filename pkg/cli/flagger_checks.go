package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// routerCaps is what each of Sluice's routers can do (docs/routers.md; the
// engine checks the same with pkg/router.Unsupported and stalls otherwise).
type routerCaps struct{ match, mirror, sessionAffinity bool }

var sluiceRouters = map[string]routerCaps{
	sluicev1beta1.ProviderKubernetes:       {},
	sluicev1beta1.ProviderIstio:            {match: true, mirror: true, sessionAffinity: true},
	sluicev1beta1.ProviderGatewayAPI:       {match: true, mirror: true, sessionAffinity: true},
	sluicev1beta1.ProviderGatewayAPIV1:     {match: true, mirror: true, sessionAffinity: true},
	sluicev1beta1.ProviderGatewayAPIV1Beta: {match: true, mirror: true, sessionAffinity: true},
	sluicev1beta1.ProviderTraefik:          {},
	// Batch 2 of Flagger's other routers (docs/routers.md).
	"linkerd":      {match: true},
	"smi:v1alpha1": {},
	"smi:v1alpha2": {},
	"smi:v1alpha3": {},
	"gloo":         {match: true},
	"kuma":         {match: true},
	"apisix":       {},
	"knative":      {}, // Knative Service targets only (flagger_knative.go)
}

func supportedProviders() string {
	names := make([]string, 0, len(sluiceRouters))
	for n := range sluiceRouters {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// reporter collects the findings of one object.
type reporter struct {
	c          *converter
	root       *yaml.Node
	kind, name string
}

func (r *reporter) add(sev Severity, at *yaml.Node, format string, args ...any) {
	line := r.root.Line
	if at != nil {
		line = at.Line
	}
	r.c.res.Findings = append(r.c.res.Findings, Finding{
		Source: r.c.source, Line: line, Kind: r.kind, Name: r.name, Severity: sev, Message: fmt.Sprintf(format, args...),
	})
}

func (r *reporter) warn(at *yaml.Node, format string, args ...any) {
	r.add(SeverityWarning, at, format, args...)
}
func (r *reporter) note(at *yaml.Node, format string, args ...any) {
	r.add(SeverityNote, at, format, args...)
}

// at finds the key node of a path (strings are keys, ints are list
// indexes), or the deepest node of the path that exists.
func (r *reporter) at(keys ...any) *yaml.Node {
	n, found := r.root, r.root
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			key := childKey(n, k)
			if key == nil {
				return found
			}
			found, n = key, child(n, k)
		case int:
			if n == nil || n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return found
			}
			n = n.Content[k]
			found = n
		}
	}
	return found
}

// check decodes the converted object into Sluice's type and reports.
func (r *reporter) check() {
	if child(r.root, "status") != nil {
		r.note(r.at("status"), "status is ignored: the Sluice controller writes its own")
	}
	var obj any
	switch r.kind {
	case "Canary":
		obj = &sluicev1beta1.Canary{}
	case "MetricTemplate":
		obj = &sluicev1beta1.MetricTemplate{}
	default:
		obj = &sluicev1beta1.AlertProvider{}
	}
	if err := decodeStrict(r.root, obj); err != nil {
		r.warn(r.root, "does not fit Sluice's schema (%s): the API server rejects it, or drops the field", schemaError(err))
		data, merr := yaml.Marshal(r.root)
		if merr != nil || sigsyaml.Unmarshal(data, obj) != nil {
			return
		}
	}
	switch o := obj.(type) {
	case *sluicev1beta1.Canary:
		r.canary(o)
	case *sluicev1beta1.AlertProvider:
		r.alertProvider(o)
	}
}

// schemaError trims the JSON decoder's prefixes from a strict decoding error.
func schemaError(err error) string {
	s := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

func (r *reporter) canary(c *sluicev1beta1.Canary) {
	provider := c.Spec.Provider
	caps, known := sluiceRouters[provider]
	switch {
	case provider == "":
		r.note(r.at("spec"), "spec.provider is not set: Sluice uses its --default-provider (kubernetes unless set at install) where Flagger used -mesh-provider (istio unless set); set spec.provider to be explicit")
	case !known:
		r.warn(r.at("spec", "provider"), "Sluice has no router for provider %s: the Canary would be Stalled (UnknownProvider); supported providers: %s", provider, supportedProviders())
	case provider == "linkerd":
		r.note(r.at("spec", "provider"), "provider linkerd writes a Gateway API HTTPRoute attached to the apex Service (Linkerd 2.14 and later), where Flagger wrote an SMI TrafficSplit: with the linkerd-smi extension, use provider smi:v1alpha2")
	}
	switch kind := c.Spec.TargetRef.Kind; kind {
	case "Deployment", "DaemonSet", "StatefulSet":
	default:
		if !r.knativeTarget(c) { // flagger_knative.go
			r.warn(r.at("spec", "targetRef", "kind"), "targetRef kind %s is accepted but not released by Sluice (Stalled, UnsupportedTarget): use a Deployment, a DaemonSet, a StatefulSet or a Knative Service (serving.knative.dev/v1, provider knative)", orDash(kind))
		}
	}
	if ref := c.Spec.AutoscalerRef; ref != nil && ref.Kind == "ScaledObject" && ref.APIVersion != "keda.sh/v1alpha1" {
		r.warn(r.at("spec", "autoscalerRef", "apiVersion"), "autoscalerRef apiVersion %s is not a KEDA ScaledObject version Sluice supports (Stalled, UnsupportedAutoscaler): use keda.sh/v1alpha1", orDash(ref.APIVersion))
	}
	a := c.Spec.Analysis
	if a == nil {
		r.warn(r.at("spec"), "spec.analysis is required by Sluice's API: add one (stepWeight or iterations, and the checks)")
		return
	}
	r.analysisRules(a)
	if known && provider != "" {
		strategy := c.Strategy(provider)
		if strategy == sluicev1beta1.StrategyABTesting && !caps.match {
			r.warn(r.at("spec", "analysis", "match"), "provider %s cannot route by request match (Stalled, UnsupportedFeature): remove analysis.match or use istio or gatewayapi", provider)
		}
		if a.Mirror && !caps.mirror {
			r.warn(r.at("spec", "analysis", "mirror"), "provider %s cannot mirror traffic (Stalled, UnsupportedFeature; Flagger ignored it): remove analysis.mirror", provider)
		}
		if a.SessionAffinity != nil && !caps.sessionAffinity {
			r.warn(r.at("spec", "analysis", "sessionAffinity"), "provider %s has no session affinity (Stalled, UnsupportedFeature; Flagger ignored it): remove analysis.sessionAffinity", provider)
		}
	}
	if a.Interval != nil && a.Interval.Duration > 0 && a.Interval.Duration < 10*time.Second {
		r.note(r.at("spec", "analysis", "interval"), "analysis.interval %s is honoured (Flagger raised intervals under 10s to 10s)", a.Interval.Duration)
	}
	gatewayAPI := strings.HasPrefix(provider, sluicev1beta1.ProviderGatewayAPI)
	if gatewayAPI {
		r.gatewayMatches(c.Spec.Service.Match, "service")
		r.gatewayMatches(a.Match, "analysis")
		r.gatewayPorts(c) // flagger_sourcematch.go
	}
	for i, m := range a.Metrics {
		builtin := m.Name == "request-success-rate" || m.Name == "request-duration"
		if builtin && gatewayAPI && m.TemplateRef == nil && m.Query == "" {
			r.note(r.at("spec", "analysis", "metrics", i), "builtin %s with provider %s queries Traefik's series (traefik_service_*, @kubernetesgateway), where Flagger queried the application's http_request_duration_seconds: with another Gateway implementation, use a MetricTemplate", m.Name, provider)
		}
		switch {
		case m.TemplateRef != nil && m.Query != "":
			r.warn(r.at("spec", "analysis", "metrics", i), "rejected by the API: metric %s takes templateRef or query, not both", m.Name)
		case !builtin && m.TemplateRef == nil && m.Query == "":
			r.warn(r.at("spec", "analysis", "metrics", i), "rejected by the API: metric %s is not a builtin (request-success-rate, request-duration) and sets neither templateRef nor query", m.Name)
		}
	}
	if len(a.Webhooks) > 0 {
		r.note(r.at("spec", "analysis", "webhooks"), "webhooks pass on any 2xx answer (Flagger: 200-202 only) and redirects are not followed")
	}
	for i, al := range a.Alerts {
		if al.Severity == "" {
			r.note(r.at("spec", "analysis", "alerts", i), "alert %s has no severity: Sluice sends it every event (info), Flagger sent it none", al.Name)
		}
	}
}

// analysisRules reports the analysis shapes the CRD's validation rules reject.
func (r *reporter) analysisRules(a *sluicev1beta1.CanaryAnalysis) {
	at := func(key string) *yaml.Node { return r.at("spec", "analysis", key) }
	reject := func(n *yaml.Node, msg string) { r.warn(n, "rejected by the API: %s", msg) }
	weights := a.StepWeight > 0 || len(a.StepWeights) > 0
	if a.Iterations <= 0 && !weights {
		reject(at("iterations"), "spec.analysis needs a strategy: set iterations (blue/green, or A/B with match) or stepWeight/stepWeights (canary)")
	}
	if a.StepWeight > 0 && len(a.StepWeights) > 0 {
		reject(at("stepWeights"), "spec.analysis takes stepWeight or stepWeights, not both")
	}
	if a.Iterations > 0 && weights {
		reject(at("iterations"), "spec.analysis.iterations (blue/green, A/B) and stepWeight/stepWeights (canary) select different strategies: keep one")
	}
	if a.MaxWeight > 0 && a.StepWeight > 0 && a.MaxWeight < a.StepWeight {
		reject(at("maxWeight"), "spec.analysis.maxWeight must be greater than or equal to stepWeight")
	}
	if len(a.Match) > 0 && a.Iterations <= 0 {
		reject(at("match"), "spec.analysis.match (A/B testing) requires spec.analysis.iterations greater than 0")
	}
	for i := 1; i < len(a.StepWeights); i++ {
		if a.StepWeights[i] <= a.StepWeights[i-1] {
			reject(at("stepWeights"), "spec.analysis.stepWeights must be strictly ascending, e.g. [1, 5, 10, 50]")
			break
		}
	}
	if a.SessionAffinity != nil && a.Iterations > 0 {
		reject(at("sessionAffinity"), "spec.analysis.sessionAffinity works with the progressive canary strategy only: remove analysis.iterations or analysis.sessionAffinity")
	}
}

func (r *reporter) alertProvider(ap *sluicev1beta1.AlertProvider) {
	s := ap.Spec
	if s.Address == "" && s.SecretRef == nil {
		r.warn(r.at("spec"), "rejected by the API: an AlertProvider needs spec.address or spec.secretRef (a Secret whose key address holds the webhook URL)")
	}
	switch s.Type {
	case "msteams":
		if strings.Contains(s.Address, "webhook.office.com") || strings.Contains(s.Address, "outlook.office.com") {
			r.warn(r.at("spec", "address"), "this is a retired Office 365 connector URL: Sluice posts Adaptive Cards to a Teams Workflows (Power Automate) webhook; create one and use its URL")
		} else {
			r.note(r.at("spec", "type"), "Sluice posts Adaptive Cards to a Teams Workflows (Power Automate) webhook, not Flagger's retired connector MessageCards: check the URL is a Workflows one")
		}
	case "discord":
		if strings.HasSuffix(strings.TrimRight(s.Address, "/"), "/slack") {
			r.warn(r.at("spec", "address"), "Sluice posts native Discord messages: remove the /slack suffix Flagger's Slack-compatible format needed")
		}
	}
	if s.Username == "" {
		r.note(r.at("spec"), "spec.username is not set: messages are posted as sluice (Flagger: flagger)")
	}
}

// gatewayMatches reports the Istio-only match conditions the gatewayapi
// router cannot express (pkg/router/gatewayapi translateMatch refuses them;
// Flagger dropped them silently).
func (r *reporter) gatewayMatches(ms []sluicev1beta1.HTTPMatchRequest, parent string) {
	for i, m := range ms {
		var what string
		switch {
		case m.IgnoreURICase:
			what = "ignoreUriCase"
		case len(m.WithoutHeaders) > 0:
			what = "withoutHeaders"
		case m.Scheme != nil || m.Authority != nil || m.Port != 0:
			what = "scheme, authority or port (use spec.service.hosts or the gateway listener)"
		case len(m.SourceLabels) > 0 || m.SourceNamespace != "" || len(m.Gateways) > 0:
			what = "sourceLabels, sourceNamespace or gateways (use spec.service.gatewayRefs)"
		case m.Method != nil && (m.Method.Exact == "" || m.Method.Prefix != "" || m.Method.Suffix != "" || m.Method.Regex != ""):
			what = "a method other than an exact one"
		default:
			continue
		}
		r.warn(r.at("spec", parent, "match", i), "%s.match[%d]: the Gateway API cannot match %s: Sluice's gatewayapi router refuses the route (Flagger dropped the condition); remove it", parent, i, what)
	}
}
