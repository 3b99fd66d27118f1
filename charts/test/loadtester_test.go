package charttest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/loadtester"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// TestLoadtesterChart_RunsWithItsArgsAndRole runs the real load tester
// binary with the arguments of the chart's Deployment (the shell-tasks
// example), its clients file and allow-list where the chart mounts them,
// as the chart's ServiceAccount with the chart's Role: an unauthenticated
// call is refused, and a token caller opens a gate, which is stored as a
// ConfigMap in the release namespace through the Role.
func TestLoadtesterChart_RunsWithItsArgsAndRole(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "loadtester")
	g.Expect(err).NotTo(HaveOccurred())
	port := freePort(t)
	objs, err := render("lt", ns, chartCase{chart: "loadtester", example: "shell-tasks.yaml"}, "--set", "port="+port)
	g.Expect(err).NotTo(HaveOccurred())
	var sa string
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount":
			sa = o.GetName()
		case "Role", "RoleBinding":
		default:
			continue
		}
		g.Expect(env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("sluice-chart-test"), client.ForceOwnership)).To(Succeed())
	}
	g.Expect(sa).NotTo(BeEmpty())

	// The files the pod would get from the Secret and the ConfigMap.
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth.yaml")
	g.Expect(os.WriteFile(auth, []byte(`clients:
- name: sluice
  hmacKey: chart-test-signing-key
  namespaces: ["test"]
- name: release-bot
  token: "0123456789abcdef-token"
  namespaces: ["test"]
  scopes: [check, operate]
`), 0o600)).To(Succeed())
	allow, _, _ := unstructured.NestedString(find(objs, "ConfigMap")[0].Object, "data", "allow.yaml")
	allowFile := filepath.Join(dir, "allow.yaml")
	g.Expect(os.WriteFile(allowFile, []byte(allow), 0o600)).To(Succeed())
	args := containerArgs(g, find(objs, "Deployment")[0])
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--auth-file="):
			args[i] = "--auth-file=" + auth
		case strings.HasPrefix(a, "--shell-allow-file="):
			args[i] = "--shell-allow-file=" + allowFile
		}
	}

	bin := filepath.Join(t.TempDir(), "loadtester")
	build := exec.Command("go", "build", "-o", bin, "./cmd/loadtester")
	build.Dir = root
	out, err := build.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "go build ./cmd/loadtester: %s", out)
	user := "system:serviceaccount:" + ns + ":" + sa
	kubeconfig := writeImpersonatingKubeconfig(t, env.Config, user, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"})
	logs := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE="+ns)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g.Expect(cmd.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			t.Logf("the load tester ended after SIGTERM: %v", err)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("the load tester was killed: %v", <-exited)
		}
		if t.Failed() {
			t.Logf("load tester logs:\n%s", logs.String())
		}
	}()

	base := "http://127.0.0.1:" + port
	g.Eventually(func() (int, error) {
		select {
		case err := <-exited:
			return 0, StopTrying("the load tester exited").Wrap(err)
		default:
		}
		return httpStatus(base + "/healthz")
	}, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))

	post := func(path, token string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewBufferString(`{"name":"podinfo","namespace":"test"}`))
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		return resp.StatusCode
	}
	g.Expect(post("/gate/open", "")).To(Equal(http.StatusUnauthorized))
	g.Expect(post("/gate/check", "0123456789abcdef-token")).To(Equal(http.StatusForbidden), "gates start closed")
	g.Expect(post("/gate/open", "0123456789abcdef-token")).To(Equal(http.StatusAccepted))
	g.Expect(post("/gate/check", "0123456789abcdef-token")).To(Equal(http.StatusOK))
	cms := &corev1.ConfigMapList{}
	g.Expect(env.Client.List(ctx, cms, client.InNamespace(ns))).To(Succeed())
	var gates []string
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, "sluice-gate-") {
			gates = append(gates, cm.Name)
		}
	}
	g.Expect(gates).To(HaveLen(1), "the open gate is a ConfigMap in the release namespace")
	// A signed call (Sluice's key, scope check) is accepted once: its
	// request id is a ConfigMap created through the chart's Role.
	body := []byte(`{"name":"podinfo","namespace":"test"}`)
	signed, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/gate/check", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(webhooks.SignRequest(signed, []byte("chart-test-signing-key"), body, time.Now())).To(Succeed())
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		r := signed.Clone(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(want), "signed call %d", i+1)
	}
	ids := &corev1.ConfigMapList{}
	g.Expect(env.Client.List(ctx, ids, client.InNamespace(ns), client.HasLabels{loadtester.LabelRequestID})).To(Succeed())
	g.Expect(ids.Items).To(HaveLen(1), "the request id is a ConfigMap in the release namespace")
	g.Expect(post("/gate/close", "0123456789abcdef-token")).To(Equal(http.StatusAccepted))
	g.Expect(post("/gate/check", "0123456789abcdef-token")).To(Equal(http.StatusForbidden))
	g.Expect(logs.String()).NotTo(ContainSubstring("forbidden"))
}
