// Package testenv starts a real control plane (etcd and kube-apiserver, built
// by `make tools`) for integration tests, with Sluice's CRDs installed. Each
// test package starts one in TestMain and shares it; tests isolate themselves
// with a namespace each.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"k8s.io/apimachinery/pkg/runtime"
)

// Environment is a running control plane and a client for it.
type Environment struct {
	env    *envtest.Environment
	Config *rest.Config
	Client client.Client
	Root   string

	procs []process
	dir   string
	// apiServer and apiArgs are set once StopAPIServer has stopped
	// envtest's kube-apiserver: its command line, and its replacement.
	apiServer *apiServer
	apiArgs   []string
}

// settings are what the options set.
type settings struct {
	env         *envtest.Environment
	controllers bool
	unlimited   bool
}

// Option changes how the environment starts.
type Option func(*settings)

// WithControllers also runs kube-controller-manager, kube-scheduler and kwok
// with a fake node, so workloads get pods that become ready, and owned
// objects are garbage-collected.
func WithControllers() Option {
	return func(s *settings) { s.controllers = true }
}

// WithoutClientLimits lifts the client-side rate limits of
// kube-controller-manager and kube-scheduler (20 and 50 requests per second
// by default), as kwokctl's --disable-qps-limits does. With hundreds of
// Deployments rolling out at once, kcm's limit, not the controller under
// test, decides when pods exist: a benchmark that compares controllers
// lifts it so both wait for the same, short, pod start-up. It implies
// WithControllers.
func WithoutClientLimits() Option {
	return func(s *settings) { s.controllers, s.unlimited = true, true }
}

// WithCRDPaths installs the CRDs found in these files or directories too
// (relative paths are taken from the repository root).
func WithCRDPaths(paths ...string) Option {
	return func(s *settings) {
		s.env.CRDDirectoryPaths = append(s.env.CRDDirectoryPaths, paths...)
	}
}

// WithProviderCRDs installs the CRDs of Istio, the Gateway API and Traefik,
// fetched from their Go modules by `make tools` (hack/crds.sh) into bin/crds.
func WithProviderCRDs() Option {
	return WithCRDPaths("bin/crds/istio", "bin/crds/gatewayapi", "bin/crds/traefik")
}

// Start starts etcd and kube-apiserver with the CRDs of config/crd/bases.
// The binaries come from $KUBEBUILDER_ASSETS or the repository's bin/.
func Start(scheme *runtime.Scheme, opts ...Option) (*Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("control plane binary %s not found in %s: run `make tools` (or `make test`, which builds them): %w", b, assets, err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	s := &settings{env: env}
	for _, o := range opts {
		o(s)
	}
	for i, p := range env.CRDDirectoryPaths {
		if !filepath.IsAbs(p) {
			env.CRDDirectoryPaths[i] = filepath.Join(root, p)
		}
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("failed to start the control plane: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	e := &Environment{env: env, Config: cfg, Client: c, Root: root}
	if s.controllers {
		if err := e.startControllers(assets, s.unlimited); err != nil {
			_ = e.Stop()
			return nil, err
		}
	}
	return e, nil
}

// Stop stops the controllers, then the API server, then etcd.
func (e *Environment) Stop() error {
	e.stopControllers()
	e.stopRestartedAPIServer()
	return e.env.Stop()
}

// AddUser adds a user to the control plane and returns a config that
// authenticates as it (used to test RBAC through impersonation-free clients).
func (e *Environment) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to add user %s: %w", name, err)
	}
	return u.Config(), nil
}

// Namespace creates a fresh namespace for one test.
func (e *Environment) Namespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := e.Client.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("failed to create a namespace: %w", err)
	}
	return ns.Name, nil
}

// RepoRoot finds the repository root: the closest directory above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
