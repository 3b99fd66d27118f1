package gatewayapi

import (
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// apiVersion is the version Sluice writes a Canary's HTTPRoute through:
// gateway.networking.k8s.io/v1beta1 for the gatewayapi:v1beta1 provider (as
// Flagger does, for clusters whose tooling or admission policies still work
// on v1beta1), v1 otherwise. Both versions are served by the same CRD and
// hold the same schema, so the router still reads the route as v1 (the
// manager's cache holds one version) and compares what it would write with
// what is stored; only the write, and so the managedFields entry of the
// sluice-router field manager, carries v1beta1.
func apiVersion(c *sluicev1beta1.Canary) string {
	if c.Spec.Provider == sluicev1beta1.ProviderGatewayAPIV1Beta {
		return gatewayv1beta1.GroupVersion.String()
	}
	return GVK.GroupVersion().String()
}
