package stack

import (
	"context"
	"fmt"
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
// sluice manager, as each cluster of a fleet runs its own Sluice. It has no
// data plane: its workloads get kwok pods, not loopback servers, so it
// suits releases without traffic (the kubernetes provider, no metrics).
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
}

var setLoggerOnce sync.Once

// StartCluster starts another cluster with its own sluice manager (the
// stack's manager flags, plus extra). Stop stops it with the stack.
func (s *Stack) StartCluster(ctx context.Context, name string, extra ...string) (*Cluster, error) {
	// envtest logs through controller-runtime's logger, which complains
	// with a stack trace when nobody set it.
	setLoggerOnce.Do(func() { ctrllog.SetLogger(s.log.WithName("envtest")) })
	env, err := testenv.Start(Scheme(), testenv.WithControllers())
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
	flags := append([]string{"--git-cache-dir=" + filepath.Join(s.Dir, name+"-git-cache")}, extra...)
	m, err := s.startManager(ctx, c.Kubeconfig, flags...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c.Manager = m
	return c, nil
}
