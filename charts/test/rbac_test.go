package charttest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// managerRun is the manager binary running as the chart's ServiceAccount.
type managerRun struct {
	ns     string   // the release namespace
	user   string   // the ServiceAccount's user name
	groups []string // its groups
	logs   *syncBuffer
	// as is a client with the same identity.
	as client.Client
}

// startManagerAs installs the chart's ServiceAccount and roles (the chart's
// defaults plus set) in the test control plane, runs the real manager
// binary with the arguments of the chart's Deployment as that
// ServiceAccount (a kubeconfig that impersonates it), and waits until it is
// ready (every informer synced, so each list and watch was allowed) and
// leads (leader election through the namespaced Role). The manager stops
// at the end of the test.
func startManagerAs(t *testing.T, release string, set ...string) *managerRun {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	bin := buildManager(t)
	ns, err := env.Namespace(ctx, "sluice-system")
	g.Expect(err).NotTo(HaveOccurred())
	metricsPort, healthPort := freePort(t), freePort(t)
	args := []string{"--set", "metrics.port=" + metricsPort, "--set", "health.port=" + healthPort,
		"--set", "leaderElection.leaseDuration=4s", "--set", "leaderElection.renewDeadline=3s", "--set", "leaderElection.retryPeriod=1s"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	objs, err := render(release, ns, chartCase{chart: "sluice"}, args...)
	g.Expect(err).NotTo(HaveOccurred())

	// The identity and its roles, exactly as rendered.
	var sa string
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount":
			sa = o.GetName()
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		g.Expect(env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("sluice-chart-test"), client.ForceOwnership)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}
	g.Expect(sa).NotTo(BeEmpty())
	m := &managerRun{ns: ns, user: "system:serviceaccount:" + ns + ":" + sa, logs: &syncBuffer{}}
	m.groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	kubeconfig := writeImpersonatingKubeconfig(t, env.Config, m.user, m.groups)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: m.user, Groups: m.groups}
	m.as, err = client.New(cfg, client.Options{Scheme: scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	// The manager, with the chart's arguments; only the Git cache moves
	// from the pod's volume to a temporary directory.
	margs := containerArgs(g, find(objs, "Deployment")[0])
	for i, a := range margs {
		if strings.HasPrefix(a, "--git-cache-dir=") {
			margs[i] = "--git-cache-dir=" + t.TempDir()
		}
	}
	cmd := exec.Command(bin, margs...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g.Expect(cmd.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			t.Logf("the manager ended after SIGTERM: %v", err)
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("the manager was killed: %v", <-exited)
		}
		if t.Failed() {
			t.Logf("manager logs:\n%s", m.logs.String())
		}
	})

	g.Eventually(func() (int, error) {
		select {
		case err := <-exited:
			return 0, StopTrying("the manager exited").Wrap(err)
		default:
		}
		return httpStatus("http://127.0.0.1:" + healthPort + "/readyz")
	}, 60*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK))
	g.Eventually(func() (string, error) {
		_, body, err := httpGet("http://127.0.0.1:" + metricsPort + "/metrics")
		return body, err
	}, 30*time.Second, 250*time.Millisecond).Should(ContainSubstring(`leader_election_master_status{name="` + release + `-sluice-leader-election"} 1`))
	return m
}

// release runs a canary release of a new image (provider kubernetes, no
// metrics, 1s interval) to Succeeded under the manager's identity.
func (m *managerRun) release(g Gomega, ctx context.Context) {
	apps, err := env.Namespace(ctx, "apps")
	g.Expect(err).NotTo(HaveOccurred())
	createTarget(g, ctx, apps, "podinfo", "1.0")
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: apps},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                sluicev1beta1.ProviderKubernetes,
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:                 sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2, Iterations: 2,
			},
		},
	})).To(Succeed())
	waitPhase(g, ctx, apps, "podinfo", sluicev1beta1.CanaryPhaseInitialized, m.logs)
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: apps, Name: "podinfo"}, d)).To(Succeed())
	d.Spec.Template.Spec.Containers[0].Image = "example.com/podinfo:2.0"
	g.Expect(env.Client.Update(ctx, d)).To(Succeed())
	waitPhase(g, ctx, apps, "podinfo", sluicev1beta1.CanaryPhaseSucceeded, m.logs)
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: apps, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/podinfo:2.0"))
	// Events were recorded with the manager's role.
	g.Eventually(func() (int, error) {
		list := &corev1.EventList{}
		err := env.Client.List(ctx, list, client.InNamespace(apps))
		return len(list.Items), err
	}, 10*time.Second, 250*time.Millisecond).ShouldNot(BeZero())
	g.Expect(m.logs.String()).NotTo(ContainSubstring("forbidden"), "the manager was refused a call it needs")
}

// expectNarrow checks that the identity is refused what no feature needs.
func (m *managerRun) expectNarrow(g Gomega, ctx context.Context) {
	forbidden := func(what string, err error) {
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: want Forbidden, got %v", what, err)
	}
	forbidden("delete a Node", m.as.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-0"}}))
	forbidden("list Pods", m.as.List(ctx, &corev1.PodList{}))
	forbidden("bind cluster-admin in kube-system", m.as.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "escalate", Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: m.user}},
	}))
	forbidden("create a ClusterRole", m.as.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "escalate-" + m.ns}}))
	forbidden("create a webhook configuration", m.as.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "intercept-" + m.ns}}))
	forbidden("read Leases outside its namespace", m.as.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, &coordinationv1.Lease{}))
}

// gitRepo serves a repository holding a ConfigMap, a ServiceAccount and a
// Deployment. The ServiceAccount is a kind no generated role may create:
// only gitSync.apply (or the GitSync's own ServiceAccount) allows it.
func gitRepo(t *testing.T) string {
	t.Helper()
	s, err := testenv.StartGitServer(t.TempDir(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r, err := s.NewRepo("apps")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write("apps", map[string]string{
		"deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: v1\n",
		"deploy/sa.yaml":     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
		"deploy/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example.com/web:1.0}]
`,
	}); err != nil {
		t.Fatal(err)
	}
	return r.URL
}

// gitSync creates a GitSync of the repository's deploy/ into its namespace,
// and deletes it at the end of the test while the manager still runs (so
// its finalizer is handled and the next test's manager does not see it).
func gitSync(t *testing.T, g Gomega, ctx context.Context, ns, url, serviceAccount string) {
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: ns},
		Spec: sluicev1beta1.GitSyncSpec{
			URL: url, Path: "deploy", Interval: &metav1.Duration{Duration: 2 * time.Second},
			TargetNamespace: ns, ServiceAccountName: serviceAccount,
		},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, gs)
		NewWithT(t).Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), &sluicev1beta1.GitSync{}))
		}, 30*time.Second, 250*time.Millisecond).Should(BeTrue(), "the GitSync was not finalized")
	})
}

// gitSyncReady returns the GitSync's Ready condition as "Status: message".
func gitSyncReady(ctx context.Context, ns string) func() string {
	return func() string {
		gs := &sluicev1beta1.GitSync{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "apps"}, gs); err != nil {
			return err.Error()
		}
		for _, c := range gs.Status.Conditions {
			if c.Type == sluicev1beta1.ReadyCondition {
				return string(c.Status) + ": " + c.Message
			}
		}
		return ""
	}
}

// TestSluiceChart_RBACDefaults proves the default chart's RBAC sufficient:
// the manager, as the chart's ServiceAccount, completes a canary release
// without one forbidden call and GitSync applies a repository's ConfigMap
// and Deployment with the default gitSync.apply rules; and narrow: calls
// outside the roles are refused.
func TestSluiceChart_RBACDefaults(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	m := startManagerAs(t, "rbac-defaults")
	m.release(g, ctx)
	m.expectNarrow(g, ctx)

	ns, err := env.Namespace(ctx, "gitops")
	g.Expect(err).NotTo(HaveOccurred())
	gitSync(t, g, ctx, ns, gitRepo(t), "")
	g.Eventually(gitSyncReady(ctx, ns), 60*time.Second, 250*time.Millisecond).Should(HavePrefix("True"))
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &appsv1.Deployment{})).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.ServiceAccount{})).To(Succeed())
}

// TestSluiceChart_RBACMinimal turns off every optional role (routers,
// notifications, GitSync's apply rules): the engine's role alone carries a
// kubernetes-provider release, the manager may then neither delete
// Deployments or Canaries, and a GitSync applies kinds outside the
// manager's roles only through a ServiceAccount of its own
// (spec.serviceAccountName).
func TestSluiceChart_RBACMinimal(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	m := startManagerAs(t, "rbac-minimal", "routers.istio.enabled=false", "routers.gatewayapi.enabled=false",
		"routers.traefik.enabled=false", "notifications.enabled=false", "gitSync.apply.rules=null")
	m.release(g, ctx)
	m.expectNarrow(g, ctx)
	forbidden := func(what string, err error) {
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: want Forbidden, got %v", what, err)
	}
	forbidden("delete Deployments", m.as.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace("default")))
	forbidden("delete Canaries", m.as.DeleteAllOf(ctx, &sluicev1beta1.Canary{}, client.InNamespace("default")))
	forbidden("create Namespaces", m.as.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nope-"}}))

	// Without a ServiceAccount of its own, GitSync may apply only what the
	// manager's roles allow: the repository's ServiceAccount is refused.
	ns, err := env.Namespace(ctx, "gitops")
	g.Expect(err).NotTo(HaveOccurred())
	url := gitRepo(t)
	gitSync(t, g, ctx, ns, url, "")
	g.Eventually(gitSyncReady(ctx, ns), 60*time.Second, 250*time.Millisecond).Should(And(HavePrefix("False"), ContainSubstring("forbidden"), ContainSubstring("serviceaccounts")))

	// With one whose Role covers the repository's kinds, it applies.
	ns2, err := env.Namespace(ctx, "gitops")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns2}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns2},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "serviceaccounts"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns2},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns2}},
	})).To(Succeed())
	gitSync(t, g, ctx, ns2, url, "deployer")
	g.Eventually(gitSyncReady(ctx, ns2), 60*time.Second, 250*time.Millisecond).Should(HavePrefix("True"))
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns2, Name: "web"}, &corev1.ServiceAccount{})).To(Succeed())
}

// buildManager builds cmd/sluice into a temporary directory.
func buildManager(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	return bin
}

// writeImpersonatingKubeconfig writes a kubeconfig that authenticates as the
// test's admin and impersonates user and groups, as a ServiceAccount token would.
func writeImpersonatingKubeconfig(t *testing.T, admin *rest.Config, user string, groups []string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData, Token: admin.BearerToken,
		Impersonate: user, ImpersonateGroups: groups,
	}
	kc.Contexts["sa"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "sa"}
	kc.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// createTarget creates a one-replica Deployment whose pod kwok runs.
func createTarget(g Gomega, ctx context.Context, ns, name, version string) {
	labels := map[string]string{"app": name}
	g.Expect(env.Client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/podinfo:" + version,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	})).To(Succeed())
}

// waitPhase waits for a Canary phase, failing early on Failed.
func waitPhase(g Gomega, ctx context.Context, ns, name string, want sluicev1beta1.CanaryPhase, logs fmt.Stringer) {
	g.Eventually(func() (sluicev1beta1.CanaryPhase, error) {
		c := &sluicev1beta1.Canary{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
			return "", err
		}
		if c.Status.Phase == sluicev1beta1.CanaryPhaseFailed && want != sluicev1beta1.CanaryPhaseFailed {
			return c.Status.Phase, StopTrying(fmt.Sprintf("the Canary failed: %+v", c.Status.Conditions))
		}
		return c.Status.Phase, nil
	}, 90*time.Second, 250*time.Millisecond).Should(Equal(want), "manager logs:\n%s", logs)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func httpStatus(url string) (int, error) {
	code, _, err := httpGet(url)
	return code, err
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url) //nolint:noctx // loopback test URL
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(http.MaxBytesReader(nil, resp.Body, 4<<20))
	return resp.StatusCode, b.String(), err
}

// syncBuffer collects the manager's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
