// Package providers lists every router Sluice ships: the manager builds its
// registry with RegisterAll, and hack/routerdocs generates the capability
// table of docs/routers.md from the same registry, so the table lists what
// the manager runs.
package providers

import (
	"github.com/sluice-cd/sluice/pkg/router"
	apisixrouter "github.com/sluice-cd/sluice/pkg/router/apisix"
	contourrouter "github.com/sluice-cd/sluice/pkg/router/contour"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	gloorouter "github.com/sluice-cd/sluice/pkg/router/gloo"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
	knativerouter "github.com/sluice-cd/sluice/pkg/router/knative"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	kumarouter "github.com/sluice-cd/sluice/pkg/router/kuma"
	linkerdrouter "github.com/sluice-cd/sluice/pkg/router/linkerd"
	nginxrouter "github.com/sluice-cd/sluice/pkg/router/nginx"
	skipperrouter "github.com/sluice-cd/sluice/pkg/router/skipper"
	smirouter "github.com/sluice-cd/sluice/pkg/router/smi"
	traefikrouter "github.com/sluice-cd/sluice/pkg/router/traefik"
)

// Options are the manager's settings of the routers.
type Options struct {
	// TraefikNativeLB sets nativeLB on the TraefikServices' weighted entries.
	TraefikNativeLB bool
	// NginxAnnotationsPrefix is ingress-nginx's --annotations-prefix; empty
	// is nginx.ingress.kubernetes.io.
	NginxAnnotationsPrefix string
	// GatewayAPIImplementation picks the gatewayapi builtin metrics' series
	// (--gateway-api-implementation); the zero value is Traefik's.
	GatewayAPIImplementation gatewayapirouter.Implementation
}

// RegisterAll adds every router to r.
func RegisterAll(r *router.Registry, o Options) {
	kubernetesrouter.Register(r)
	var traefikOpts []traefikrouter.Option
	if o.TraefikNativeLB {
		traefikOpts = append(traefikOpts, traefikrouter.WithNativeLB())
	}
	traefikrouter.Register(r, traefikOpts...)
	istiorouter.Register(r)
	impl := o.GatewayAPIImplementation
	if impl == "" {
		impl = gatewayapirouter.ImplementationTraefik
	}
	gatewayapirouter.Register(r, gatewayapirouter.WithImplementation(impl))
	// linkerd drives HTTPRoutes too: their kind is registered by gatewayapi above.
	linkerdrouter.Register(r)
	smirouter.Register(r)
	gloorouter.Register(r)
	kumarouter.Register(r)
	apisixrouter.Register(r)
	nginxrouter.Register(r, nginxrouter.WithAnnotationsPrefix(o.NginxAnnotationsPrefix))
	skipperrouter.Register(r)
	contourrouter.Register(r)
	knativerouter.Register(r)
}
