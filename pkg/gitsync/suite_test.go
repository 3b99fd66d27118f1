package gitsync_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// env is a real etcd and kube-apiserver; a manager runs the GitSync reconciler on it.
var env *testenv.Environment

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testenv.FuzzWorker() { // fuzz functions need no control plane (see FuzzWorker)
		return m.Run()
	}
	notPrivate, err := labels.NewRequirement(privateManagerLabel, selection.DoesNotExist, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	env, err = testenv.Start(scheme)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(io.MultiWriter(os.Stderr, &managerLog))))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The GitSyncs of the tests that run their own manager are theirs alone.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&sluicev1beta1.GitSync{}: {Label: labels.NewSelector().Add(*notPrivate)},
		}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cache, err := os.MkdirTemp("", "gitsync-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(cache)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &gitsync.GitSyncReconciler{Fetcher: gitsync.NewFetcher(cache), MaxConcurrentReconciles: 4}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return m.Run()
}

func namespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Namespace(context.Background(), "gitsync")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// newGitSync creates a GitSync with a one-second interval.
func newGitSync(t *testing.T, ns, name, url string, mutate ...func(*sluicev1beta1.GitSync)) *sluicev1beta1.GitSync {
	t.Helper()
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      url,
			Interval: &metav1.Duration{Duration: time.Second},
			Timeout:  &metav1.Duration{Duration: 20 * time.Second},
		},
	}
	for _, m := range mutate {
		m(gs)
	}
	if err := env.Client.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), gs) })
	return gs
}

// ready returns the Ready condition of a GitSync (nil until set).
func ready(g Gomega, ns, name string) *metav1.Condition {
	gs := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, gs)).To(Succeed())
	// A nil condition fails here (and Eventually polls again) rather than
	// panicking in the caller that reads c.Reason before the first status write.
	c := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition)
	g.Expect(c).NotTo(BeNil(), "GitSync %s/%s has no Ready condition yet", ns, name)
	return c
}

func getGitSync(g Gomega, ns, name string) *sluicev1beta1.GitSync {
	gs := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, gs)).To(Succeed())
	return gs
}

func configMap(g Gomega, ns, name string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)).To(Succeed())
	return cm
}

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

func deploymentYAML(name, image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: %[2]s
`, name, image, replicas)
}
