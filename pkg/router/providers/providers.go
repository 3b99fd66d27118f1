// Package providers lists every router Sluice ships: the manager builds its
// registry with RegisterAll, and hack/routerdocs generates the capability
// table of docs/routers.md from the same registry, so the table lists what
// the manager runs.
package providers

import (
	"github.com/sluice-cd/sluice/pkg/router"
	contourrouter "github.com/sluice-cd/sluice/pkg/router/contour"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
	knativerouter "github.com/sluice-cd/sluice/pkg/router/knative"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	nginxrouter "github.com/sluice-cd/sluice/pkg/router/nginx"
	skipperrouter "github.com/sluice-cd/sluice/pkg/router/skipper"
	traefikrouter "github.com/sluice-cd/sluice/pkg/router/traefik"
)

// Options are the manager's settings of the routers.
type Options struct {
	// TraefikNativeLB sets nativeLB on the TraefikServices' weighted entries.
	TraefikNativeLB bool
	// NginxAnnotationsPrefix is ingress-nginx's --annotations-prefix; empty
	// is nginx.ingress.kubernetes.io.
	NginxAnnotationsPrefix string
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
	gatewayapirouter.Register(r)
	nginxrouter.Register(r, nginxrouter.WithAnnotationsPrefix(o.NginxAnnotationsPrefix))
	skipperrouter.Register(r)
	contourrouter.Register(r)
	knativerouter.Register(r)
}
