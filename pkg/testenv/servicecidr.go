package testenv

// WithServiceCIDR gives Services ClusterIPs from cidr instead of envtest's
// default 10.0.0.0/24, whose 254 addresses run out at about 80 Canaries (each
// has three Services). Scale benchmarks use a /16.
func WithServiceCIDR(cidr string) Option {
	return func(s *settings) {
		s.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", cidr)
	}
}
