package testenv

import (
	"fmt"
	"net/netip"
)

// loopbackNet is the range Linux routes to the loopback interface.
var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// WithLoopbackServicesIn is WithLoopbackServices with another range of
// 127.0.0.0/8, for a second cluster on the same machine: its Services must
// not get the ClusterIPs of the first cluster's, or the processes that play
// both clusters' pods would fight over the same addresses. cidr must be
// inside 127.0.0.0/8 and must not overlap LoopbackServiceCIDR.
func WithLoopbackServicesIn(cidr string) (Option, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("invalid loopback Service range %q: %w", cidr, err)
	}
	if !loopbackNet.Contains(p.Addr()) || p.Bits() < loopbackNet.Bits() {
		return nil, fmt.Errorf("loopback Service range %s is not inside %s", cidr, loopbackNet)
	}
	if p.Overlaps(loopbackServices) {
		return nil, fmt.Errorf("loopback Service range %s overlaps %s, the range of WithLoopbackServices", cidr, LoopbackServiceCIDR)
	}
	return func(s *settings) {
		args := s.env.ControlPlane.GetAPIServer().Configure()
		args.Set("service-cluster-ip-range", p.String())
		args.Set("endpoint-reconciler-type", "none")
	}, nil
}
