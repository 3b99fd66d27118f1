package testenv

import (
	"fmt"
	"net/netip"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// LoopbackServiceCIDR is the Service ClusterIP range of WithLoopbackServices.
// Linux routes all of 127.0.0.0/8 to the loopback interface, so a process on
// the machine can listen on a Service's ClusterIP and play its pods.
const LoopbackServiceCIDR = "127.96.0.0/16"

// loopbackServices is LoopbackServiceCIDR parsed once.
var loopbackServices = netip.MustParsePrefix(LoopbackServiceCIDR)

// IsLoopbackServiceIP reports whether ip (a Service ClusterIP) is in
// LoopbackServiceCIDR.
func IsLoopbackServiceIP(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && loopbackServices.Contains(addr)
}

// WithLoopbackServices gives Services ClusterIPs in LoopbackServiceCIDR, so
// that a data plane on this machine (Traefik with nativeLB) reaches them
// without kube-proxy. The API server rejects 127.x addresses in Endpoints,
// so the endpoint reconciler of the default kubernetes Service is turned
// off.
func WithLoopbackServices() Option {
	return func(s *settings) {
		args := s.env.ControlPlane.GetAPIServer().Configure()
		args.Set("service-cluster-ip-range", LoopbackServiceCIDR)
		args.Set("endpoint-reconciler-type", "none")
	}
}

// WriteAdminKubeconfig adds a user in group system:masters and writes a
// kubeconfig that authenticates as it to path (mode 0600), for child
// processes such as Traefik and the sluice manager.
func (e *Environment) WriteAdminKubeconfig(path string) error {
	u, err := e.env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("failed to add the admin user: %w", err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to render the admin kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("failed to write the admin kubeconfig: %w", err)
	}
	return nil
}
