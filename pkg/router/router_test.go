package router_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

type plain struct{}

func (plain) Reconcile(context.Context, *sluicev1beta1.Canary) error { return nil }
func (plain) SetRoutes(context.Context, *sluicev1beta1.Canary, router.Routes) error {
	return nil
}
func (plain) GetRoutes(context.Context, *sluicev1beta1.Canary) (router.Routes, error) {
	return router.Routes{PrimaryWeight: 100}, nil
}
func (plain) Finalize(context.Context, *sluicev1beta1.Canary) error { return nil }

type weighted struct{ plain }

func (weighted) SupportsWeights() {}

func TestRegistry_UnknownProviderNamesTheSupportedOnes(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	r.Register(func(client.Client) router.Router { return plain{} }, "kubernetes")
	r.Register(func(client.Client) router.Router { return weighted{} }, "gatewayapi", "gatewayapi:v1")
	g.Expect(r.Names()).To(Equal([]string{"gatewayapi", "gatewayapi:v1", "kubernetes"}))
	rt, err := r.New("gatewayapi:v1", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rt).To(BeAssignableToTypeOf(weighted{}))
	_, err = r.New("istio", nil)
	g.Expect(err).To(MatchError(router.ErrUnknownProvider))
	g.Expect(err).To(MatchError(ContainSubstring(`unknown provider "istio": this controller supports gatewayapi, gatewayapi:v1, kubernetes`)))
}

func TestUnsupported(t *testing.T) {
	match := []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x": {Exact: "y"}}}}
	tests := []struct {
		name     string
		rt       router.Router
		analysis sluicev1beta1.CanaryAnalysis
		want     []string
	}{
		{name: "blue/green needs nothing", rt: plain{}, analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3}},
		{name: "weights need a weighted router", rt: plain{}, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10}, want: []string{"cannot split traffic by weight"}},
		{name: "weighted router fits a canary", rt: weighted{}, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10}},
		{name: "A/B needs match", rt: weighted{}, analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3, Match: match}, want: []string{"cannot route by request match"}},
		{name: "mirror and affinity", rt: weighted{}, analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, Mirror: true, SessionAffinity: &sluicev1beta1.SessionAffinity{CookieName: "c"}},
			want: []string{"cannot mirror traffic", "has no session affinity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &tt.analysis}}
			got := router.Unsupported(tt.rt, c, "p")
			g.Expect(got).To(HaveLen(len(tt.want)))
			for i, w := range tt.want {
				g.Expect(got[i]).To(ContainSubstring(w))
			}
		})
	}
}
