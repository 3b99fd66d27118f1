package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// env is a real etcd and kube-apiserver with Sluice's CRDs; the commands
// reach it through a kubeconfig file, as kubectl would.
var (
	env        *testenv.Environment
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if testenv.FuzzWorker() { // fuzz functions need no control plane (see FuzzWorker)
		return m.Run()
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	var err error
	env, err = testenv.Start(scheme)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "kubectl-sluice-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(env.Config, kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// writeKubeconfig writes a kubeconfig for a rest.Config (client certificate auth).
func writeKubeconfig(rc *rest.Config, path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken,
	}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*cfg, path)
}

// syncBuffer is a buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is what a command printed and returned.
type result struct {
	out, errOut *syncBuffer
	err         error
}

// kubectlSluice runs the plugin with the test kubeconfig and stdin.
func kubectlSluice(ctx context.Context, stdin string, args ...string) result {
	r := result{out: &syncBuffer{}, errOut: &syncBuffer{}}
	r.err = start(ctx, stdin, r, args...)
	return r
}

func start(ctx context.Context, stdin string, r result, args ...string) error {
	o := NewOptions(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: r.out, ErrOut: r.errOut})
	cmd := newRoot(o, "test")
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	return cmd.ExecuteContext(ctx)
}

// background runs a command in a goroutine; wait returns its error.
func background(ctx context.Context, args ...string) (result, func() error) {
	r := result{out: &syncBuffer{}, errOut: &syncBuffer{}}
	done := make(chan error, 1)
	go func() { done <- start(ctx, "", r, args...) }()
	return r, func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("the command did not return within a minute; stdout:\n%s", r.out.String())
		}
	}
}

func namespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Namespace(context.Background(), "cli")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// newCanary creates a valid progressive Canary and sets its status.
func newCanary(t *testing.T, ns, name string, status sluicev1beta1.CanaryStatus, mutate ...func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	t.Helper()
	ctx := context.Background()
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderIstio,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: 30 * time.Second}, Threshold: 3, StepWeight: 10, MaxWeight: 50,
			},
		},
	}
	for _, m := range mutate {
		m(c)
	}
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	setCanaryStatus(t, c, status)
	return c
}

// setCanaryStatus writes a Canary's status, as the engine would.
func setCanaryStatus(t *testing.T, c *sluicev1beta1.Canary, status sluicev1beta1.CanaryStatus) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() error {
		cur := &sluicev1beta1.Canary{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), cur); err != nil {
			return err
		}
		cur.Status = status
		return env.Client.Status().Update(context.Background(), cur)
	}).Should(Succeed())
}

func getCanary(t *testing.T, ns, name string) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newGitSync(t *testing.T, ns, name string, suspend bool) *sluicev1beta1.GitSync {
	t.Helper()
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       sluicev1beta1.GitSyncSpec{URL: "https://git.example.com/apps.git", Path: "deploy", Suspend: suspend},
	}
	if err := env.Client.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

func ptrTo[T any](v T) *T { return &v }
