package kubernetes_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/kubernetes"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Input{
		Provider:    kubernetes.Name,
		Register:    kubernetes.Register,
		Client:      env.Client,
		Unsupported: []conformance.Feature{conformance.Weights, conformance.Match, conformance.Mirror, conformance.SessionAffinity},
		Namespace:   func(ctx context.Context) (string, error) { return env.Namespace(ctx, "k8s-conformance") },
		Canary: func(ns string) *sluicev1beta1.Canary {
			return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: sluicev1beta1.CanarySpec{
				Provider:  kubernetes.Name,
				TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
				Service:   sluicev1beta1.CanaryService{Port: 80},
			}}
		},
		Prepare: func(ctx context.Context, c client.Client, canary *sluicev1beta1.Canary) error {
			for name, value := range map[string]string{"app": "app-primary", "app-primary": "app-primary", "app-canary": "app"} {
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: canary.Namespace}, Spec: corev1.ServiceSpec{
					Selector: map[string]string{"app": value}, Ports: []corev1.ServicePort{{Port: 80}}}}
				if err := c.Create(ctx, svc); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
