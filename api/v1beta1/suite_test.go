package v1beta1_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// env is the control plane shared by the tests of this package: a real
// etcd and kube-apiserver with the generated CRDs installed.
var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	var err error
	env, err = testenv.Start(scheme)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to stop the control plane:", err)
	}
	os.Exit(code)
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Namespace(context.Background(), "crd")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}
