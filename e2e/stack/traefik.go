package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	// GatewayClassName is the GatewayClass the stack creates for Traefik.
	GatewayClassName = "traefik"
	// GatewayNamespace and GatewayName name the stack's Gateway, the
	// parent of every HTTPRoute (a Canary's service.gatewayRefs).
	GatewayNamespace = "gateway"
	GatewayName      = "public"
	// traefikController is Traefik's Gateway API controller name.
	traefikController = "traefik.io/gateway-controller"
)

// latencyBuckets are fine histogram buckets (seconds): Traefik's defaults
// (0.1, 0.3, 1.2, 5) make a 15 ms backend look like 99 ms at p99.
const latencyBuckets = "[0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5]"

// traefikConfig is Traefik's static configuration: the web entryPoint that
// carries the traffic, the traefik entryPoint for /ping and /metrics, and
// both Kubernetes providers with native load balancing (Traefik sends to the
// Service ClusterIP, played by the stack's pods).
func traefikConfig(webAddr, adminAddr string) string {
	return fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: INFO
entryPoints:
  web:
    address: %q
  traefik:
    address: %q
ping:
  entryPoint: traefik
metrics:
  prometheus:
    entryPoint: traefik
    addServicesLabels: true
    addEntryPointsLabels: true
    buckets: %s
providers:
  kubernetesGateway:
    nativeLBByDefault: true
    throttleDuration: 100ms
  kubernetesCRD:
    nativeLBByDefault: true
    allowCrossNamespace: true
    throttleDuration: 100ms
`, webAddr, adminAddr, latencyBuckets)
}

// startTraefik writes the configuration and starts Traefik against the
// stack's cluster, waiting for /ping.
func (s *Stack) startTraefik(ctx context.Context) error {
	p, web, admin, err := runTraefik(ctx, s.Root, s.Dir, "traefik", s.Kubeconfig)
	if p != nil {
		s.track(p)
	}
	if err != nil {
		return err
	}
	s.Traefik, s.WebPort, s.TraefikAdmin = p, web, admin
	s.TraefikURL = fmt.Sprintf("http://127.0.0.1:%d", web)
	return nil
}

// runTraefik writes dir/<name>.yaml and starts Traefik (its log
// dir/<name>.log) against the cluster of kubeconfig on two free ports,
// waiting for /ping. It returns the process (also on error, once started,
// for the caller to stop), the web entryPoint's port and the host:port of
// /ping and /metrics.
func runTraefik(ctx context.Context, root, dir, name, kubeconfig string) (p *Process, webPort int, admin string, err error) {
	bin := filepath.Join(root, "bin", "traefik")
	if _, err := os.Stat(bin); err != nil {
		return nil, 0, "", fmt.Errorf("traefik not found at %s: run `make traefik` (hack/traefik.sh builds it): %w", bin, err)
	}
	web, err := freePort()
	if err != nil {
		return nil, 0, "", err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, 0, "", err
	}
	admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(traefikConfig(fmt.Sprintf("127.0.0.1:%d", web), admin)), 0o600); err != nil {
		return nil, 0, "", fmt.Errorf("failed to write the Traefik configuration: %w", err)
	}
	p, err = startProcess(dir, name, bin, []string{"--configFile=" + cfg}, []string{"KUBECONFIG=" + kubeconfig})
	if err != nil {
		return nil, 0, "", err
	}
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		if ended, err := p.Exited(); ended {
			return false, fmt.Errorf("traefik exited: %w", exitError(err))
		}
		resp, err := http.Get("http://" + admin + "/ping") //nolint:noctx // loopback, bounded by poll
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return p, 0, "", fmt.Errorf("%s did not answer /ping: %w; log: %s", name, err, p.Tail(4096))
	}
	return p, web, admin, nil
}

// createGateway creates the GatewayClass and the Gateway of the stack's
// cluster.
func (s *Stack) createGateway(ctx context.Context) error {
	return createGateway(ctx, s.Client, s.WebPort, s.Traefik)
}

// createGateway creates, in the cluster of c, the GatewayClass and the
// Gateway whose listener is the web entryPoint of traefik (port webPort),
// and waits until Traefik programs it.
func createGateway(ctx context.Context, c client.Client, webPort int, traefik *Process) error {
	if err := ensureNamespace(ctx, c, GatewayNamespace); err != nil {
		return err
	}
	gc := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayClassName},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: traefikController},
	}
	if err := c.Create(ctx, gc); err != nil {
		return fmt.Errorf("failed to create the GatewayClass: %w", err)
	}
	all := gatewayv1.NamespacesFromAll
	gw := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: GatewayNamespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: GatewayClassName,
			Listeners: []gatewayv1.Listener{{
				Name:     "web",
				Port:     gatewayv1.PortNumber(webPort),
				Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{
					Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(all)},
				},
			}},
		},
	}
	if err := c.Create(ctx, gw); err != nil {
		return fmt.Errorf("failed to create the Gateway: %w", err)
	}
	err := poll(ctx, 60*time.Second, func() (bool, error) {
		if err := c.Get(ctx, objectKey(GatewayNamespace, GatewayName), gw); err != nil {
			return false, nil
		}
		for _, c := range gw.Status.Conditions {
			if c.Type == string(gatewayv1.GatewayConditionProgrammed) && c.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("traefik did not program the Gateway %s/%s: %w; traefik log: %s", GatewayNamespace, GatewayName, err, traefik.Tail(4096))
	}
	return nil
}
