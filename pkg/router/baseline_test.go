package router_test

import (
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

type threeWay struct{ weighted }

func (threeWay) SupportsBaseline() {}

func TestUnsupported_Baseline(t *testing.T) {
	tests := []struct {
		name     string
		rt       router.Router
		provider string
		analysis sluicev1beta1.CanaryAnalysis
		want     string
	}{
		{name: "a three-way router fits a progressive canary", rt: threeWay{}, provider: "p", analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, MaxWeight: 50, Baseline: true}},
		{name: "no baseline asks nothing", rt: weighted{}, provider: "p", analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10}},
		{name: "a two-way router names the routers that can", rt: weighted{}, provider: "p", analysis: sluicev1beta1.CanaryAnalysis{StepWeight: 10, Baseline: true},
			want: "provider p cannot split traffic three ways (primary, baseline, canary): remove analysis.baseline or use a provider that can (provider p supports strategies canary, blue-green; capabilities weights; providers with baseline: gatewayapi, istio, traefik)"},
		{name: "the kubernetes provider releases blue/green", rt: plain{}, provider: sluicev1beta1.ProviderKubernetes, analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3, Baseline: true},
			want: "provider kubernetes cannot split traffic three ways"},
		{name: "blue/green on a three-way router has no weight to share", rt: threeWay{}, provider: "p", analysis: sluicev1beta1.CanaryAnalysis{Iterations: 3, Baseline: true},
			want: "analysis.baseline needs the progressive canary strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{Analysis: &tt.analysis}}
			got := router.Unsupported(tt.rt, c, tt.provider)
			if tt.want == "" {
				g.Expect(got).To(BeEmpty())
				return
			}
			g.Expect(got).To(ContainElement(ContainSubstring(tt.want)))
		})
	}
}

func TestRoutes_StringNamesTheBaseline(t *testing.T) {
	g := NewWithT(t)
	g.Expect(router.Routes{PrimaryWeight: 80, BaselineWeight: 10, CanaryWeight: 10}.String()).To(Equal("primary 80%, baseline 10%, canary 10%"))
	g.Expect(router.Routes{PrimaryWeight: 90, CanaryWeight: 10}.String()).To(Equal("primary 90%, canary 10%"))
}
