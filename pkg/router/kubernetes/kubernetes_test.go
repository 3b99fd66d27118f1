package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	var err error
	if env, err = testenv.Start(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestRouter_SwitchesTheApexService checks blue/green through the apex
// Service selector on a real API server.
func TestRouter_SwitchesTheApexService(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "k8s-router")
	g.Expect(err).NotTo(HaveOccurred())
	for name, value := range map[string]string{"web": "web-primary", "web-primary": "web-primary", "web-canary": "web"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Port: 80}}}}
		g.Expect(env.Client.Create(ctx, svc)).To(Succeed())
	}
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{Name: "web"}}}
	reg := router.NewRegistry()
	kubernetes.Register(reg)
	rt, err := reg.New("kubernetes", env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())

	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 100}))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{CanaryWeight: 100})).To(Succeed())
	apex := &corev1.Service{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, apex)).To(Succeed())
	g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "web"}))
	g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{CanaryWeight: 100}))

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100})).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, apex)).To(Succeed())
	g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "web-primary"}))

	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 50, CanaryWeight: 50})).To(MatchError(ContainSubstring("can only route all traffic to one side")))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 100, Mirrored: true})).To(MatchError(ContainSubstring("cannot mirror")))
}
