package gatewayapi

import (
	"fmt"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// multiPortUnsupported rejects a generated HTTPRoute or GRPCRoute for a
// Canary whose Services carry several ports (spec.service.portDiscovery).
//
// A route's rules apply to every listener it attaches to, and a rule's match
// cannot name the listener port, so one generated route cannot send listener
// A to port 80 and listener B to port 9090: every extra port would silently
// be unreachable through the gateway, or (with one rule per port) reached on
// the wrong backend port. The user's own route can tell the ports apart
// (hostname, path, parentRefs sectionName), and routeref.go splits every
// rule that sends to the apex Service on its own port.
func multiPortUnsupported(c *sluicev1beta1.Canary, provider string) []string {
	if !c.Spec.Service.PortDiscovery {
		return nil
	}
	return []string{fmt.Sprintf("provider %s generates one route whose rules apply to every listener it attaches to, so it cannot send each port "+
		"of spec.service.portDiscovery to its own backend port: set spec.service.gatewayAPI.routeRef to an HTTPRoute you own with a rule per port "+
		"(Sluice splits each rule on its port), or remove portDiscovery to route spec.service.port only", provider)}
}
