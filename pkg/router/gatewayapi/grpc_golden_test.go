package gatewayapi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/conformance"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

// TestGolden_GRPCRoute renders the GRPCRoute of every sample a GRPCRoute can
// serve (routeKind GRPCRoute, without the fields it cannot express) and
// compares it with testdata/golden/<sample>-grpcroute*.yaml (go test
// -update rewrites them), then has the API server validate it (dry run);
// the samples it cannot serve must be reported.
func TestGolden_GRPCRoute(t *testing.T) {
	reg := router.NewRegistry()
	gatewayapi.Register(reg)
	rt, err := reg.New(gatewayapi.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := env.Namespace(context.Background(), "grpc-golden")
	if err != nil {
		t.Fatal(err)
	}
	rendered := 0
	for base, c := range conformance.Samples(t) {
		c.Spec.Provider = gatewayapi.Name
		c.UID = "00000000-0000-0000-0000-000000000001"
		c.Spec.Service.GatewayAPI = &sluicev1beta1.GatewayAPIRouting{RouteKind: sluicev1beta1.GatewayRouteKindGRPC}
		if missing := router.Unsupported(rt, c, gatewayapi.Name); len(missing) > 0 {
			t.Logf("%s: not a GRPCRoute sample: %v", base, missing)
			continue
		}
		rendered++
		variants := map[string]router.Routes{"grpcroute": {PrimaryWeight: 90, CanaryWeight: 10}}
		if a := c.Spec.Analysis; a != nil && len(a.Match) > 0 {
			variants["grpcroute-canary100"] = router.Routes{CanaryWeight: 100}
		}
		if a := c.Spec.Analysis; a != nil && a.Mirror {
			variants["grpcroute-mirrored"] = router.Routes{PrimaryWeight: 100, Mirrored: true}
		}
		for name, routes := range variants {
			t.Run(base+"-"+name, func(t *testing.T) {
				g := NewWithT(t)
				obj, err := gatewayapi.BuildGRPC(c, routes, nil)
				g.Expect(err).NotTo(HaveOccurred())
				got, err := yaml.Marshal(obj.Object)
				g.Expect(err).NotTo(HaveOccurred())
				file := filepath.Join("testdata", "golden", base+"-"+name+".yaml")
				if *update {
					g.Expect(os.WriteFile(file, got, 0o644)).To(Succeed())
				}
				want, err := os.ReadFile(file)
				g.Expect(err).NotTo(HaveOccurred(), "run go test -update to write %s", file)
				g.Expect(string(got)).To(Equal(string(want)))
				// The API server (the CRD's schema and CEL rules) takes it.
				obj.SetNamespace(ns)
				obj.SetOwnerReferences(nil)
				g.Expect(env.Client.Create(context.Background(), obj, client.DryRunAll)).To(Succeed())
			})
		}
	}
	if rendered == 0 {
		t.Fatal("no sample renders as a GRPCRoute")
	}
}
