package charttest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var (
	// root is the repository root.
	root string
	// helmHome holds helm's config, cache and data for the tests.
	helmHome string
	// env is a control plane with kube-controller-manager, the scheduler
	// and kwok, so the rollout test gets ready (fake) pods.
	env *testenv.Environment
)

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sluicev1beta1.AddToScheme(s))
	return s
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "helm")); err != nil {
		fmt.Fprintf(os.Stderr, "bin/helm not found: run `make tools` (hack/tools.sh helm): %v\n", err)
		return 1
	}
	if helmHome, err = os.MkdirTemp("", "sluice-charttest-helm-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(helmHome)
	if env, err = testenv.Start(scheme(), testenv.WithControllers()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}
