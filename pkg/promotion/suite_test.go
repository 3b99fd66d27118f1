package promotion_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The decision tests of this package are pure and need no control plane:
// the real API server starts on the first test that asks for it.
var (
	envOnce sync.Once
	env     *testenv.Environment
	envErr  error
	scheme  = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	// client-go's event recorder finds the kinds of the objects it
	// records events on in client-go's scheme.
	_ = sluicev1beta1.AddToScheme(clientgoscheme.Scheme)
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// controlPlane is the shared etcd and kube-apiserver.
func controlPlane(t *testing.T) *testenv.Environment {
	t.Helper()
	envOnce.Do(func() { env, envErr = testenv.Start(scheme) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}
