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
	bin := filepath.Join(s.Root, "bin", "traefik")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("traefik not found at %s: run `make traefik` (hack/traefik.sh builds it): %w", bin, err)
	}
	web, err := freePort()
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	s.WebPort = web
	s.TraefikURL = fmt.Sprintf("http://127.0.0.1:%d", web)
	s.TraefikAdmin = fmt.Sprintf("127.0.0.1:%d", admin)
	cfg := filepath.Join(s.Dir, "traefik.yaml")
	if err := os.WriteFile(cfg, []byte(traefikConfig(fmt.Sprintf("127.0.0.1:%d", web), s.TraefikAdmin)), 0o600); err != nil {
		return fmt.Errorf("failed to write the Traefik configuration: %w", err)
	}
	p, err := startProcess(s.Dir, "traefik", bin, []string{"--configFile=" + cfg}, []string{"KUBECONFIG=" + s.Kubeconfig})
	if err != nil {
		return err
	}
	s.Traefik = p
	s.track(p)
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		if ended, err := p.Exited(); ended {
			return false, fmt.Errorf("traefik exited: %w", exitError(err))
		}
		resp, err := http.Get("http://" + s.TraefikAdmin + "/ping") //nolint:noctx // loopback, bounded by poll
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("traefik did not answer /ping: %w; log: %s", err, p.Tail(4096))
	}
	return nil
}

// createGateway creates the GatewayClass and the Gateway whose listener is
// Traefik's web entryPoint, and waits until Traefik programs it.
func (s *Stack) createGateway(ctx context.Context) error {
	if err := s.ensureNamespace(ctx, GatewayNamespace); err != nil {
		return err
	}
	gc := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayClassName},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: traefikController},
	}
	if err := s.Client.Create(ctx, gc); err != nil {
		return fmt.Errorf("failed to create the GatewayClass: %w", err)
	}
	all := gatewayv1.NamespacesFromAll
	gw := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: GatewayNamespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: GatewayClassName,
			Listeners: []gatewayv1.Listener{{
				Name:     "web",
				Port:     gatewayv1.PortNumber(s.WebPort),
				Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{
					Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(all)},
				},
			}},
		},
	}
	if err := s.Client.Create(ctx, gw); err != nil {
		return fmt.Errorf("failed to create the Gateway: %w", err)
	}
	err := poll(ctx, 60*time.Second, func() (bool, error) {
		if err := s.Client.Get(ctx, objectKey(GatewayNamespace, GatewayName), gw); err != nil {
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
		return fmt.Errorf("traefik did not program the Gateway %s/%s: %w; traefik log: %s", GatewayNamespace, GatewayName, err, s.Traefik.Tail(4096))
	}
	return nil
}
