package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Stack is a running local stack. Every part is stopped by Stop, in the
// reverse order of start.
type Stack struct {
	// Root is the repository root.
	Root string
	// Dir holds the stack's files: kubeconfig, Traefik configuration, logs.
	Dir string
	// Kubeconfig is the path of a cluster-admin kubeconfig.
	Kubeconfig string
	// Config and Client reach the API server as cluster admin.
	Config *rest.Config
	Client client.Client
	// Env is the control plane (etcd, kube-apiserver, kcm, scheduler, kwok).
	Env *testenv.Environment
	// Traefik is the data plane process; TraefikURL its web entryPoint
	// (the Gateway's listener, port WebPort) and TraefikAdmin the
	// host:port of /ping and /metrics.
	Traefik      *Process
	TraefikURL   string
	TraefikAdmin string
	WebPort      int
	// Prometheus scrapes Traefik every second.
	Prometheus *testenv.Prometheus
	// Pods plays the pods of the loopback Services.
	Pods *Pods
	// KeepDir keeps Dir (the logs) after Stop, e.g. when a test failed.
	KeepDir bool

	log   logr.Logger
	mu    sync.Mutex
	stops []func()
	// managers are the managers started, in order (their logs are named
	// after their rank).
	managers []*Manager
	// dataPlanes counts the clusters started with a data plane, each of
	// which gets the next loopback Service range.
	dataPlanes int
}

// Options change how the stack starts.
type Options struct {
	// Log receives the stack's own messages; discarded when zero.
	Log logr.Logger
}

// Scheme is the scheme of the stack's client: Kubernetes, Sluice and the
// Gateway API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sluicev1beta1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// Start brings the stack up: the control plane with Services on loopback
// ClusterIPs, the Gateway API, Traefik, Istio and Sluice CRDs, Traefik with
// a Gateway, Prometheus scraping Traefik, and the pods. ctx bounds the
// start only: the stack runs until Stop. On error, whatever started is
// stopped again.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		return nil, err
	}
	s = &Stack{Root: root, Dir: dir, log: o.Log}
	if s.log.GetSink() == nil {
		s.log = logr.Discard()
	}
	// The stack is captured here: a failing step returns nil, which would
	// otherwise be what the deferred cleanup stops (a nil dereference that
	// hid the step's error).
	started := s
	defer func() {
		if err != nil {
			started.KeepDir = true
			started.Stop()
			err = fmt.Errorf("%w (stack files kept in %s)", err, dir)
		}
	}()
	env, err := testenv.Start(Scheme(), testenv.WithControllers(), testenv.WithLoopbackServices(), testenv.WithProviderCRDs())
	if err != nil {
		return nil, err
	}
	s.Env, s.Config, s.Client = env, env.Config, env.Client
	// envtest's etcd and kube-apiserver have no Pdeathsig: a reaper kills
	// them if this process dies without Stop. It is stopped after them.
	pids, err := testenv.ChildrenNamed("etcd", "kube-apiserver")
	if err == nil {
		var stopReaper func()
		if stopReaper, err = startReaper(pids); err != nil {
			_ = env.Stop()
			return nil, err
		}
		s.onStop(stopReaper)
	}
	s.onStop(func() { _ = env.Stop() })
	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := env.WriteAdminKubeconfig(s.Kubeconfig); err != nil {
		return nil, err
	}
	if err := s.ensureNamespace(ctx, ManagerNamespace); err != nil {
		return nil, err
	}
	if err := s.startTraefik(ctx); err != nil {
		return nil, err
	}
	if err := s.createGateway(ctx); err != nil {
		return nil, err
	}
	prom, err := testenv.StartPrometheus(s.TraefikAdmin)
	if err != nil {
		return nil, err
	}
	s.Prometheus = prom
	s.onStop(prom.Stop)
	pods, err := startPods(ctx, s.Config, netip.MustParsePrefix(testenv.LoopbackServiceCIDR), s.log.WithName("pods"))
	if err != nil {
		return nil, err
	}
	s.Pods = pods
	s.onStop(pods.Stop)
	return s, nil
}

// Stop stops every part in the reverse order of start (managers, pods,
// Prometheus, Traefik, then kwok, the scheduler, kcm, the API server and
// etcd) and removes Dir unless KeepDir is set.
func (s *Stack) Stop() {
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if !s.KeepDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// onStop registers a stop function, run by Stop in reverse order.
func (s *Stack) onStop(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, f)
}

// track stops a child process with the stack.
func (s *Stack) track(p *Process) {
	s.onStop(func() { p.Stop(10 * time.Second) })
}

// ChildPIDs returns the PIDs of the stack's child processes: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok, Traefik,
// Prometheus and sluice managers.
func (s *Stack) ChildPIDs() ([]int, error) {
	// /proc truncates command names to 15 characters.
	return testenv.ChildrenNamed("etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok", "traefik", "prometheus", "sluice")
}

// Namespace creates a fresh namespace for one test.
func (s *Stack) Namespace(ctx context.Context, prefix string) (string, error) {
	return s.Env.Namespace(ctx, prefix)
}

func (s *Stack) ensureNamespace(ctx context.Context, name string) error {
	return ensureNamespace(ctx, s.Client, name)
}

// ensureNamespace creates namespace name in the cluster of c unless it
// exists.
func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", name, err)
	}
	return nil
}

func objectKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errTimeout is returned by poll when the condition never held.
var errTimeout = errors.New("timed out")

// poll checks cond every 100 ms until it holds, it fails, ctx ends or
// timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s", errTimeout, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after grace) and
// waits until it has exited; etcd and everything else keep running. See
// testenv's StopAPIServer and StartAPIServer.
func (s *Stack) StopAPIServer(ctx context.Context, grace time.Duration) (graceful bool, err error) {
	return s.Env.StopAPIServer(ctx, grace)
}

// StartAPIServer starts kube-apiserver again on the same port with the same
// flags, certificates and etcd, its output in Dir/kube-apiserver.log, and
// waits until it is ready. The new process has Pdeathsig, so the reaper
// (which only knows the first one) is not needed for it.
func (s *Stack) StartAPIServer(ctx context.Context) error {
	return s.Env.StartAPIServer(ctx, filepath.Join(s.Dir, "kube-apiserver.log"))
}
