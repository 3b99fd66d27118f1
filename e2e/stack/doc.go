// Package stack brings up Sluice's local end-to-end stack on one Linux
// machine, without Docker or internet: a real control plane (pkg/testenv:
// etcd, kube-apiserver with Services on loopback ClusterIPs, kcm, scheduler,
// kwok), Traefik as the data plane (bin/traefik, built by hack/traefik.sh)
// with a Gateway, Prometheus scraping Traefik every second, in-process pods
// answering on the Services' ClusterIPs, a bounded load generator, and the
// sluice manager as a child process.
//
// It is used by the scenarios in e2e/ and is meant for a demo command too:
//
//	s, err := stack.Start(ctx, stack.Options{Log: log})
//	defer s.Stop()
//	mgr, err := s.StartManager(ctx)
//	load, err := s.StartLoad(ctx, stack.LoadOptions{Host: "app.example.com", RPS: 40, Duration: time.Minute})
//
// Every child process has a recorded PID and is stopped by Stop in reverse
// order of start (the API server before etcd). Children get Pdeathsig, and
// a reaper process kills envtest's etcd and kube-apiserver (which have none)
// if the test process dies, so a crashed run leaves nothing running or
// listening. StopAPIServer and StartAPIServer restart kube-apiserver in
// place (same port, certificates and etcd); the new process has Pdeathsig.
// Several managers may run at once on the same Lease (a leader and
// standbys), each with its own log; Manager.IsLeader tells which leads.
// StartCluster adds another cluster with its own manager; StartClusterWith
// and ClusterOptions.DataPlane give it the data plane again (Services in a
// loopback range of its own, its own Traefik, Gateway, Prometheus and pods,
// and Cluster.StartLoad). StartSkipper adds, for one namespace, Skipper
// (bin/skipper, built by hack/skipper.sh) reading its Ingresses with a
// ServiceAccount token, with a Prometheus of its own and Skipper.StartLoad
// (it needs root: Skipper gets its own /etc/hosts through unshare -m). The
// package is Linux-only (Pdeathsig, /proc,
// 127.0.0.0/8 on lo).
package stack
