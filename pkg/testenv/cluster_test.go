package testenv_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestWithControllers_DeploymentBecomesAvailable checks the full local
// cluster: the Deployment controller, the scheduler and kwok turn a
// Deployment into ready pods on the fake node, with the controllers'
// default client limits and without them (a flag either binary refused
// would stop it, and the pods would never come).
func TestWithControllers_DeploymentBecomesAvailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  testenv.Option
	}{
		{"default client limits", testenv.WithControllers()},
		{"without client limits", testenv.WithoutClientLimits()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			scheme := runtime.NewScheme()
			g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
			env, err := testenv.Start(scheme, tc.opt)
			g.Expect(err).NotTo(HaveOccurred())
			defer func() { g.Expect(env.Stop()).To(Succeed()) }()

			ctx := context.Background()
			ns, err := env.Namespace(ctx, "cluster")
			g.Expect(err).NotTo(HaveOccurred())
			labels := map[string]string{"app": "web"}
			dep := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](3),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
					},
				},
			}
			g.Expect(env.Client.Create(ctx, dep)).To(Succeed())
			g.Eventually(func() (int32, error) {
				err := env.Client.Get(ctx, client.ObjectKeyFromObject(dep), dep)
				return dep.Status.AvailableReplicas, err
			}, 60*time.Second, 200*time.Millisecond).Should(Equal(int32(3)))
		})
	}
}
