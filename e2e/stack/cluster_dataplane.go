package stack

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// maxDataPlanes bounds the clusters with a data plane: their Service ranges
// are 127.97.0.0/16 up to 127.(96+maxDataPlanes).0.0/16, beside the stack's
// 127.96.0.0/16 (testenv.LoopbackServiceCIDR).
const maxDataPlanes = 8

// DataPlane is the data plane of a Cluster started with
// ClusterOptions.DataPlane: the stack's data plane again, on the cluster's
// API server. Its series live in its own Prometheus, so the builtin metric
// queries (which select by namespace and Service) never mix the clusters.
type DataPlane struct {
	// Services is the cluster's loopback Service ClusterIP range.
	Services netip.Prefix
	// Traefik is the cluster's Traefik, its log <cluster>-traefik.log in
	// the stack directory; TraefikURL its web entryPoint (the listener of
	// the cluster's Gateway GatewayNamespace/GatewayName, port WebPort) and
	// TraefikAdmin the host:port of /ping and /metrics.
	Traefik      *Process
	TraefikURL   string
	TraefikAdmin string
	WebPort      int
	// Prometheus scrapes the cluster's Traefik every second.
	Prometheus *testenv.Prometheus
	// Pods plays the pods of the cluster's loopback Services.
	Pods *Pods
}

// nextLoopbackRange is the Service range of the next cluster with a data
// plane.
func (s *Stack) nextLoopbackRange() (netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dataPlanes >= maxDataPlanes {
		return netip.Prefix{}, fmt.Errorf("at most %d clusters can have a data plane", maxDataPlanes)
	}
	s.dataPlanes++
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(96 + s.dataPlanes), 0, 0}), 16), nil
}

// startDataPlane starts, for cluster c whose Services get ClusterIPs in
// services, what Start starts for the stack's cluster: Traefik with a
// Gateway, Prometheus scraping it, and the pods. Each part stops with the
// stack.
func (s *Stack) startDataPlane(ctx context.Context, c *Cluster, services netip.Prefix) (*DataPlane, error) {
	d := &DataPlane{Services: services}
	p, web, admin, err := runTraefik(ctx, s.Root, s.Dir, c.Name+"-traefik", c.Kubeconfig)
	if p != nil {
		s.track(p)
	}
	if err != nil {
		return nil, err
	}
	d.Traefik, d.WebPort, d.TraefikAdmin = p, web, admin
	d.TraefikURL = fmt.Sprintf("http://127.0.0.1:%d", web)
	if err := createGateway(ctx, c.Client, web, p); err != nil {
		return nil, err
	}
	if d.Prometheus, err = testenv.StartPrometheus(admin); err != nil {
		return nil, err
	}
	s.onStop(d.Prometheus.Stop)
	if d.Pods, err = startPods(ctx, c.Config, services, s.log.WithName(c.Name+"-pods")); err != nil {
		return nil, err
	}
	s.onStop(d.Pods.Stop)
	return d, nil
}

// StartLoad starts sending requests to the cluster's Traefik entryPoint,
// as Stack.StartLoad does to the stack's.
func (c *Cluster) StartLoad(ctx context.Context, o LoadOptions) (*Load, error) {
	if c.DataPlane == nil {
		return nil, fmt.Errorf("cluster %s has no data plane: start it with ClusterOptions.DataPlane", c.Name)
	}
	return startLoad(ctx, c.DataPlane.TraefikURL, o)
}

// WaitServing waits until the cluster's pods listen on the ClusterIP of the
// Service ns/name (port AppPort), as Stack.WaitServing does in the stack's
// cluster.
func (c *Cluster) WaitServing(ctx context.Context, ns, name string, timeout time.Duration) error {
	if c.DataPlane == nil {
		return fmt.Errorf("cluster %s has no data plane: start it with ClusterOptions.DataPlane", c.Name)
	}
	return waitServing(ctx, c.Client, c.DataPlane.Pods, ns, name, timeout)
}

// Query runs an instant PromQL query against the cluster's Prometheus, as
// Stack.Query does against the stack's.
func (c *Cluster) Query(ctx context.Context, q string) (value float64, ok bool, err error) {
	if c.DataPlane == nil {
		return 0, false, fmt.Errorf("cluster %s has no data plane: start it with ClusterOptions.DataPlane", c.Name)
	}
	return query(ctx, c.DataPlane.Prometheus.URL, q)
}
