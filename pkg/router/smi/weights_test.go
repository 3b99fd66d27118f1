package smi

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// TestRoutesOf_Quantities checks the weights of v1alpha1 TrafficSplits,
// which are quantities (linkerd-smi accepts "500m"), read as their ratio,
// and that an unreadable weight is not taken for zero.
func TestRoutesOf_Quantities(t *testing.T) {
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{Name: "app"}}}
	for _, tc := range []struct {
		name            string
		primary, canary any
		want            router.Routes
		ok              bool
	}{
		{name: "milli", primary: "750m", canary: "250m", want: router.Routes{PrimaryWeight: 75, CanaryWeight: 25}, ok: true},
		{name: "mixed", primary: int64(1), canary: "1", want: router.Routes{PrimaryWeight: 50, CanaryWeight: 50}, ok: true},
		{name: "float", primary: float64(90), canary: float64(10), want: router.Routes{PrimaryWeight: 90, CanaryWeight: 10}, ok: true},
		{name: "zero", primary: int64(0), canary: int64(0), want: router.Routes{}, ok: true},
		{name: "garbage", primary: "lots", canary: int64(1)},
		{name: "too large", primary: int64(1) << 40, canary: int64(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			live := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"backends": []any{
				map[string]any{"service": "app-canary", "weight": tc.canary},
				map[string]any{"service": "app-primary", "weight": tc.primary},
			}}}}
			got, ok := routesOf(c, live)
			g.Expect(ok).To(Equal(tc.ok))
			if ok {
				g.Expect(got).To(Equal(tc.want))
			}
		})
	}
}
