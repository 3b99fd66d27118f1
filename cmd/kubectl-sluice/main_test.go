package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The built binary runs as a process against a real API server, so the exit
// codes CI scripts see are tested, not just the errors of pkg/cli.
var (
	env        *testenv.Environment
	binary     string
	kubeconfig string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kubectl-sluice-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "kubectl-sluice")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	ctrl.SetLogger(logr.Discard())
	// With kube-controller-manager, the scheduler and kwok, so the engine test's pods become ready.
	if env, err = testenv.Start(scheme, testenv.WithControllers()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// plugin runs the binary and returns stdout, stderr and the exit code.
func plugin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	}
	t.Fatalf("running %v: %v", args, err)
	return "", "", -1
}

func canaryWithPhase(t *testing.T, phase sluicev1beta1.CanaryPhase) (ns string) {
	t.Helper()
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "bin")
	if err != nil {
		t.Fatal(err)
	}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderIstio,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis:  &sluicev1beta1.CanaryAnalysis{StepWeight: 10},
		},
	}
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Status.Phase = phase
	if err := env.Client.Status().Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestBinary_WatchExitCodesForCI(t *testing.T) {
	for _, tt := range []struct {
		phase sluicev1beta1.CanaryPhase
		args  []string
		code  int
		want  string
	}{
		{sluicev1beta1.CanaryPhaseSucceeded, nil, 0, ""},
		{sluicev1beta1.CanaryPhaseFailed, nil, 1, "error: canary %s/podinfo failed"},
		{sluicev1beta1.CanaryPhaseProgressing, []string{"--timeout", "1s"}, 2, "error: timed out after 1s waiting for Canary %s/podinfo"},
	} {
		t.Run(string(tt.phase), func(t *testing.T) {
			g := NewWithT(t)
			ns := canaryWithPhase(t, tt.phase)
			out, errOut, code := plugin(t, "", append([]string{"watch", "podinfo", "-n", ns}, tt.args...)...)
			g.Expect(code).To(Equal(tt.code), "stdout:\n%s\nstderr:\n%s", out, errOut)
			g.Expect(out).To(ContainSubstring(string(tt.phase)))
			if tt.want != "" {
				g.Expect(errOut).To(ContainSubstring(tt.want, ns))
			}
		})
	}
}

func TestBinary_GetConvertAndVersion(t *testing.T) {
	g := NewWithT(t)
	ns := canaryWithPhase(t, sluicev1beta1.CanaryPhaseProgressing)
	out, errOut, code := plugin(t, "", "get", "-n", ns)
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(MatchRegexp(`(?m)^podinfo\s+Progressing\s+0\s+0/1\s+-\s+\S+$`))

	out, errOut, code = plugin(t, "apiVersion: flagger.app/v1beta1\nkind: AlertProvider # chat\nmetadata: {name: a}\nspec: {type: slack, username: x, secretRef: {name: s}}\n", "convert", "-")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("apiVersion: sluice.dev/v1beta1\nkind: AlertProvider # chat\nmetadata: {name: a}\nspec: {type: slack, username: x, secretRef: {name: s}}\n"))
	g.Expect(errOut).To(Equal("converted 1 Flagger object(s) in 1 input(s): 0 warning(s), 0 note(s)\n"))

	out, _, code = plugin(t, "", "--version")
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(ContainSubstring("v9.9.9-test"))

	_, errOut, code = plugin(t, "", "frobnicate")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`unknown command "frobnicate"`))
}
