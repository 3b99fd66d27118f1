package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	var err error
	// Controllers and fake nodes: the GitSync test runs a whole release; the
	// provider CRDs: the routing tests run Istio and Gateway API canaries.
	env, err = testenv.Start(Scheme(), testenv.WithControllers(), testenv.WithProviderCRDs())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// TestRun_ServesProbesAndMetricsHoldsTheLeaseAndShutsDown starts the manager
// against a real API server with the default options (leader election on),
// checks its endpoints and the Lease, then stops it and checks that it
// returned cleanly and released the Lease.
func TestRun_ServesProbesAndMetricsHoldsTheLeaseAndShutsDown(t *testing.T) {
	g := NewWithT(t)
	ns, err := env.Namespace(context.Background(), "manager")
	g.Expect(err).NotTo(HaveOccurred())

	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.MetricsAddr = freeAddr(t)
	opts.ProbeAddr = freeAddr(t)
	opts.LeaderElectionNamespace = ns
	opts.GracefulShutdownTimeout = 5 * time.Second
	g.Expect(opts.LeaderElect).To(BeTrue())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, env.Config) }()
	defer cancel()

	for _, path := range []string{"/healthz", "/readyz"} {
		g.Eventually(func() (int, error) {
			code, _, err := get("http://" + opts.ProbeAddr + path)
			return code, err
		}, 20*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK), path)
	}

	lease := &coordinationv1.Lease{}
	g.Eventually(func() (string, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: opts.LeaderElectionID}, lease); err != nil {
			return "", err
		}
		if lease.Spec.HolderIdentity == nil {
			return "", nil
		}
		return *lease.Spec.HolderIdentity, nil
	}, 30*time.Second, 200*time.Millisecond).ShouldNot(BeEmpty(), "the manager did not acquire the leader election Lease")

	g.Eventually(func() (string, error) {
		_, body, err := get("http://" + opts.MetricsAddr + "/metrics")
		return body, err
	}, 10*time.Second, 100*time.Millisecond).Should(ContainSubstring(`leader_election_master_status{name="sluice-leader-election"} 1`))

	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()), "the manager did not shut down cleanly")

	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: opts.LeaderElectionID}, lease)).To(Succeed())
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	g.Expect(holder).To(BeEmpty(), "the Lease was not released on shutdown")

	_, _, err = get("http://" + opts.ProbeAddr + "/healthz")
	g.Expect(err).To(HaveOccurred(), "the probe endpoint still answers after shutdown")
}

// TestRun_WithGeneratedRBAC runs the manager as a user that holds only the
// generated roles of every feature (config/rbac/generated/*/role.yaml),
// proving they are enough for the manager's own needs (leader election,
// informers, probes, metrics). charts/test proves the chart's bindings with
// a whole release.
func TestRun_WithGeneratedRBAC(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "rbac")
	g.Expect(err).NotTo(HaveOccurred())

	user := "system:serviceaccount:" + ns + ":sluice"
	bindGeneratedRBAC(t, g, ns, user)
	cfg, err := env.AddUser(user)
	g.Expect(err).NotTo(HaveOccurred())

	// The role is narrow: it cannot read Nodes, delete Deployments or grant RBAC.
	limited, err := client.New(cfg, client.Options{Scheme: Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	err = limited.List(ctx, &corev1.NodeList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "expected Forbidden listing Nodes, got %v", err)
	err = limited.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace(ns))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "expected Forbidden deleting Deployments, got %v", err)
	err = limited.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "escalate-" + ns}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "expected Forbidden creating a ClusterRole, got %v", err)

	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.MetricsAddr = freeAddr(t)
	opts.ProbeAddr = freeAddr(t)
	opts.LeaderElectionNamespace = ns
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, cfg) }()

	g.Eventually(func() (string, error) {
		select {
		case err := <-done:
			return "", StopTrying("the manager stopped").Wrap(err)
		default:
		}
		_, body, err := get("http://" + opts.MetricsAddr + "/metrics")
		return body, err
	}, 30*time.Second, 200*time.Millisecond).Should(ContainSubstring(`leader_election_master_status{name="sluice-leader-election"} 1`))
	// The informers of the canary controller synced: every list and watch was allowed.
	g.Eventually(func() (int, error) {
		code, _, err := get("http://" + opts.ProbeAddr + "/readyz")
		return code, err
	}, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
	code, _, err := get("http://" + opts.ProbeAddr + "/readyz")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusOK))
	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}

// TestRun_BootstrapsAGitSync starts the manager with --git-url and checks
// that the GitSync is created from the flags and reconciled by the Git sync
// loop (here to a clear failure: nothing listens at the URL).
func TestRun_BootstrapsAGitSync(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "bootstrap")
	g.Expect(err).NotTo(HaveOccurred())
	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElect = false
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	opts.GitURL = "https://127.0.0.1:1/apps.git"
	opts.GitPath = "clusters/dev"
	opts.GitSyncNamespace = ns
	opts.GitCacheDir = t.TempDir()
	g.Expect(opts.Validate()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, env.Config) }()

	gs := &sluicev1beta1.GitSync{}
	g.Eventually(func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cluster"}, gs)
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(gs.Spec.URL).To(Equal("https://127.0.0.1:1/apps.git"))
	g.Expect(gs.Spec.Path).To(Equal("clusters/dev"))
	g.Expect(gs.Spec.Ref.Branch).To(Equal("main"))
	g.Eventually(func() string {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(gs), gs)
		for _, c := range gs.Status.Conditions {
			if c.Type == sluicev1beta1.ReadyCondition {
				return string(c.Status) + " " + c.Message
			}
		}
		return ""
	}, 30*time.Second, 200*time.Millisecond).Should(And(HavePrefix("False"), ContainSubstring("127.0.0.1:1")))
	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}

func TestOptions_GitURLWithCredentialsIsRefused(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	o.GitURL = "https://bot:s3cr3t@git.example.com/apps.git"
	err := o.Validate()
	g.Expect(err).To(MatchError(ContainSubstring("--git-url must not carry credentials")))
	g.Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
}

// bindGeneratedRBAC grants user every generated role: each ClusterRole
// (renamed for this test) with a ClusterRoleBinding, and each Role in ns.
func bindGeneratedRBAC(t *testing.T, g Gomega, ns, user string) {
	t.Helper()
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(env.Root, "config", "rbac", "generated", "*", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).NotTo(BeEmpty(), "no generated roles: run make manifests")
	subject := []rbacv1.Subject{{Kind: "User", Name: user}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			err := dec.Decode(&u.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			g.Expect(err).NotTo(HaveOccurred(), f)
			if len(u.Object) == 0 {
				continue
			}
			switch u.GetKind() {
			case "ClusterRole":
				u.SetName(u.GetName() + "-" + ns)
				g.Expect(env.Client.Create(ctx, u)).To(Succeed(), f)
				g.Expect(env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: u.GetName()},
					RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: u.GetName()},
					Subjects:   subject,
				})).To(Succeed())
			case "Role":
				u.SetNamespace(ns)
				g.Expect(env.Client.Create(ctx, u)).To(Succeed(), f)
				g.Expect(env.Client.Create(ctx, &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: u.GetName()},
					RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: u.GetName()},
					Subjects:   subject,
				})).To(Succeed())
			default:
				t.Fatalf("%s: unexpected kind %s", f, u.GetKind())
			}
		}
	}
}
