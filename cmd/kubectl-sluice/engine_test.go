package main

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// startEngine runs Sluice's canary engine (kubernetes router) for one
// namespace, as the manager does, until the test ends.
func startEngine(t *testing.T, ns string) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	routers := router.NewRegistry()
	kubernetesrouter.Register(routers)
	r := &canary.CanaryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("sluice"), Routers: routers, Webhooks: webhooks.New(),
		Metrics:         &metrics.Checker{Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(), Timeout: 5 * time.Second, Builtins: routers},
		DefaultProvider: sluicev1beta1.ProviderKubernetes, MaxConcurrentReconciles: 2, SkipNameValidation: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestBinary_DrivesTheRealEngine runs releases with the canary engine and
// drives them only through the plugin: watch waits for initialization and a
// release, promote ends a long analysis, abort rolls one back (watch exits
// 1), retry releases the failed revision again.
func TestBinary_DrivesTheRealEngine(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "engine")
	g.Expect(err).NotTo(HaveOccurred())
	startEngine(t, ns)

	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/podinfo:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			},
		},
	}
	g.Expect(env.Client.Create(ctx, d)).To(Succeed())
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                sluicev1beta1.ProviderKubernetes,
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:                 sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Analysis:                &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, Iterations: 2},
		},
	}
	g.Expect(env.Client.Create(ctx, c)).To(Succeed())
	setImage := func(tag string) {
		g.Eventually(func() error {
			cur := &appsv1.Deployment{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), cur); err != nil {
				return err
			}
			cur.Spec.Template.Spec.Containers[0].Image = "example.com/podinfo:" + tag
			return env.Client.Update(ctx, cur)
		}).Should(Succeed())
	}
	phase := func() sluicev1beta1.CanaryPhase {
		cur := &sluicev1beta1.Canary{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(c), cur)).To(Succeed())
		return cur.Status.Phase
	}

	// Initialization, then a short blue/green release, each awaited by watch.
	out, errOut, code := plugin(t, "", "watch", "podinfo", "-n", ns, "--timeout", "90s")
	g.Expect(code).To(Equal(0), "watch:\n%s\n%s", out, errOut)
	g.Expect(out).To(ContainSubstring("Canary " + ns + "/podinfo Initialized"))
	setImage("2")
	out, errOut, code = plugin(t, "", "watch", "podinfo", "-n", ns, "--wait-start", "--timeout", "90s")
	g.Expect(code).To(Equal(0), "watch:\n%s\n%s", out, errOut)
	g.Expect(out).To(ContainSubstring("Progressing"))
	g.Expect(out).To(ContainSubstring("Canary " + ns + "/podinfo Succeeded: Revision"))

	// A long analysis, ended by promote.
	g.Eventually(func() error {
		cur := &sluicev1beta1.Canary{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), cur); err != nil {
			return err
		}
		cur.Spec.Analysis.Iterations = 1000
		return env.Client.Update(ctx, cur)
	}).Should(Succeed())
	setImage("3")
	g.Eventually(phase).Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
	out, errOut, code = plugin(t, "", "promote", "podinfo", "-n", ns, "--wait", "--timeout", "60s")
	g.Expect(code).To(Equal(0), "promote:\n%s\n%s", out, errOut)
	g.Expect(out).To(ContainSubstring("promote handled"))
	out, errOut, code = plugin(t, "", "watch", "podinfo", "-n", ns, "--timeout", "90s")
	g.Expect(code).To(Equal(0), "watch:\n%s\n%s", out, errOut)
	g.Expect(out).To(ContainSubstring("Succeeded"))

	// Abort: the release fails and watch exits 1 with the reason.
	setImage("4")
	g.Eventually(phase).Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
	out, errOut, code = plugin(t, "", "abort", "podinfo", "-n", ns, "--wait", "--timeout", "60s")
	g.Expect(code).To(Equal(0), "abort:\n%s\n%s", out, errOut)
	out, errOut, code = plugin(t, "", "watch", "podinfo", "-n", ns, "--timeout", "90s")
	g.Expect(code).To(Equal(1), "watch:\n%s\n%s", out, errOut)
	g.Expect(errOut).To(ContainSubstring("error: canary " + ns + "/podinfo failed: Rolled back as requested by sluice.dev/abort"))

	// Retry the failed revision, then promote it.
	out, errOut, code = plugin(t, "", "retry", "podinfo", "-n", ns, "--wait", "--timeout", "60s")
	g.Expect(code).To(Equal(0), "retry:\n%s\n%s", out, errOut)
	g.Eventually(phase).Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
	out, errOut, code = plugin(t, "", "promote", "podinfo", "-n", ns, "--wait", "--timeout", "60s")
	g.Expect(code).To(Equal(0), "promote:\n%s\n%s", out, errOut)
	out, errOut, code = plugin(t, "", "watch", "podinfo", "-n", ns, "--timeout", "90s")
	g.Expect(code).To(Equal(0), "watch:\n%s\n%s", out, errOut)

	out, _, code = plugin(t, "", "status", "podinfo", "-n", ns)
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(MatchRegexp(`Promoted\s+True`))
	g.Expect(out).To(MatchRegexp(`Handled requests: promote=\S+ abort=\S+ retry=\S+`))
	out, _, code = plugin(t, "", "get", "-n", ns)
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(MatchRegexp(`(?m)^podinfo\s+Succeeded\s+0\s+0/1\s+\S+\s+\S+$`))
}
