package cli

import (
	"bytes"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// sourceMatchKeys are the Istio match conditions on who sends a request.
// The Gateway API has no such match; Flagger's gatewayapi router turned a
// match entry made only of them into an empty match and dropped it.
var sourceMatchKeys = []string{"sourceLabels", "sourceNamespace", "gateways"}

// dropSourceMatches removes, for a gatewayapi Canary, the match entries
// made only of source conditions, as Flagger did silently: Sluice's router
// refuses them (the release could not run), and removing them keeps the
// routing the Flagger user had. An entry that is the only one of its list
// stays (removing it would turn A/B testing into a canary release), as does
// an entry mixing source and request conditions (dropping half of it widens
// who reaches the canary): both are reported by the checks as warnings.
func (c *converter) dropSourceMatches(r *reporter, doc *yaml.Node) {
	spec := child(doc, "spec")
	if !strings.HasPrefix(scalar(child(spec, "provider")), sluicev1beta1.ProviderGatewayAPI) {
		return
	}
	for _, path := range [][2]string{{"analysis", "match"}, {"service", "match"}} {
		list := child(child(spec, path[0]), path[1])
		if list == nil || list.Kind != yaml.SequenceNode || list.Style&yaml.FlowStyle != 0 {
			continue
		}
		for i, orig := 0, 0; i < len(list.Content) && len(list.Content) > 1; orig++ {
			entry := list.Content[i]
			span, ok := c.entryLines(doc, entry)
			if !onlySourceKeys(entry) || !ok {
				i++
				continue
			}
			keys := strings.Join(mappingKeys(entry), ", ")
			r.note(entry, "%s.%s[%d] (%s) removed: the Gateway API cannot match who sends a request, and Flagger dropped this entry silently, so requests matching the other entries go to the canary, as they did with Flagger", path[0], path[1], orig, keys)
			c.edits = append(c.edits, edit{line: entry.Line, col: 1, old: span})
			list.Content = slices.Delete(list.Content, i, i+1) // the checks read the edited Canary
		}
	}
}

func onlySourceKeys(entry *yaml.Node) bool {
	keys := mappingKeys(entry)
	if entry.Kind != yaml.MappingNode || entry.Style&yaml.FlowStyle != 0 || len(keys) == 0 {
		return false
	}
	for _, k := range keys {
		if !slices.Contains(sourceMatchKeys, k) {
			return false
		}
	}
	return true
}

func mappingKeys(n *yaml.Node) []string {
	var out []string
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// entryLines returns the whole lines of a block sequence entry, from its
// "- " line to the line before the next node that is not inside it (a
// sibling entry, or the parent's next key). An entry at the end of the
// document is not removed: without a next node its end is not known.
func (c *converter) entryLines(doc, entry *yaml.Node) (string, bool) {
	next := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line > entry.Line && n.Column <= entry.Column && (next == 0 || n.Line < next) {
			next = n.Line
		}
		for _, ch := range n.Content {
			walk(ch)
		}
	}
	walk(doc)
	lines := bytes.SplitAfter(c.data, []byte("\n"))
	if next == 0 || entry.Line < 1 || next > len(lines) {
		return "", false
	}
	first := strings.TrimLeft(string(lines[entry.Line-1]), " ")
	if !strings.HasPrefix(first, "- ") || strings.Count(string(lines[entry.Line-1][:entry.Column-1]), "-") != 1 {
		return "", false // not the entry's own "- " line (nested sequence, or flow)
	}
	end := next - 1
	for end > entry.Line && len(bytes.TrimSpace(lines[end-1])) == 0 {
		end-- // blank lines after the entry separate what follows: keep them
	}
	return string(bytes.Join(lines[entry.Line-1:end], nil)), true
}

// gatewayPorts warns about portDiscovery on a generated Gateway API route:
// Flagger routed spec.service.port only and left the other ports to the
// Services; Sluice stalls the Canary (pkg/router/gatewayapi multiport.go)
// rather than leave them silently unreachable through the gateway.
func (r *reporter) gatewayPorts(c *sluicev1beta1.Canary) {
	if c.Spec.Service.PortDiscovery && c.Spec.Service.GatewayRouteRef() == "" {
		r.warn(r.at("spec", "service", "portDiscovery"), "portDiscovery with provider %s: a generated route cannot send each port to its own backend port, so the Canary is Stalled (UnsupportedFeature; Flagger routed spec.service.port only): remove portDiscovery, or set spec.service.gatewayAPI.routeRef to an HTTPRoute you own with a rule per port", c.Spec.Provider)
	}
}
