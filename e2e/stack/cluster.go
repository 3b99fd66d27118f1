package stack

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Cluster is another cluster beside the stack's: its own control plane
// (etcd, kube-apiserver, kcm, scheduler, kwok with a fake node) and its own
// sluice manager, as each cluster of a fleet runs its own Sluice. Started
// by StartCluster it has no data plane: its workloads get kwok pods, not
// loopback servers, so it suits releases without traffic (the kubernetes
// provider, no metrics). Started with ClusterOptions.DataPlane it has the
// stack's data plane of its own (see DataPlane).
type Cluster struct {
	// Name names the cluster's files in the stack directory:
	// <name>.kubeconfig and <name>-git-cache (the manager's log is named
	// like any other manager's, sluice-2.log, ...).
	Name string
	// Kubeconfig is the path of a cluster-admin kubeconfig.
	Kubeconfig string
	// Config and Client reach the API server as cluster admin.
	Config *rest.Config
	Client client.Client
	// Env is the control plane.
	Env *testenv.Environment
	// Manager is the cluster's sluice manager.
	Manager *Manager
	// DataPlane is the cluster's Traefik, Prometheus and pods; nil unless
	// started with ClusterOptions.DataPlane.
	DataPlane *DataPlane
}

var setLoggerOnce sync.Once

// ClusterOptions change how StartClusterWith starts a cluster.
type ClusterOptions struct {
	// DataPlane gives the cluster a data plane like the stack's: Services
	// on loopback ClusterIPs of a range of its own, the Gateway API and
	// Traefik CRDs, its own Traefik with a Gateway, its own Prometheus
	// scraping that Traefik (the manager's --metrics-server) and its own
	// pods.
	DataPlane bool
}

// StartCluster starts another cluster with its own sluice manager (the
// stack's manager flags, plus extra). Stop stops it with the stack.
func (s *Stack) StartCluster(ctx context.Context, name string, extra ...string) (*Cluster, error) {
	return s.StartClusterWith(ctx, name, ClusterOptions{}, extra...)
}

// StartClusterWith is StartCluster with options.
func (s *Stack) StartClusterWith(ctx context.Context, name string, o ClusterOptions, extra ...string) (*Cluster, error) {
	// envtest logs through controller-runtime's logger, which complains
	// with a stack trace when nobody set it.
	setLoggerOnce.Do(func() { ctrllog.SetLogger(s.log.WithName("envtest")) })
	opts := []testenv.Option{testenv.WithControllers()}
	var services netip.Prefix
	if o.DataPlane {
		var err error
		if services, err = s.nextLoopbackRange(); err != nil {
			return nil, err
		}
		loopback, err := testenv.WithLoopbackServicesIn(services.String())
		if err != nil {
			return nil, err
		}
		opts = append(opts, loopback, testenv.WithProviderCRDs())
	}
	env, err := testenv.Start(Scheme(), opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to start the control plane of cluster %s: %w", name, err)
	}
	s.onStop(func() { _ = env.Stop() })
	c := &Cluster{Name: name, Env: env, Config: env.Config, Client: env.Client,
		Kubeconfig: filepath.Join(s.Dir, name+".kubeconfig")}
	if err := env.WriteAdminKubeconfig(c.Kubeconfig); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ManagerNamespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("failed to create namespace %s in cluster %s: %w", ManagerNamespace, name, err)
	}
	// Each manager keeps its own checkouts, as it would in its own cluster.
	flags := []string{"--git-cache-dir=" + filepath.Join(s.Dir, name+"-git-cache")}
	if o.DataPlane {
		if c.DataPlane, err = s.startDataPlane(ctx, c, services); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		// The cluster's canaries are measured where its traffic is.
		flags = append(flags, "--metrics-server="+c.DataPlane.Prometheus.URL)
	}
	flags = append(flags, extra...)
	m, err := s.startManager(ctx, c.Kubeconfig, flags...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c.Manager = m
	return c, nil
}
