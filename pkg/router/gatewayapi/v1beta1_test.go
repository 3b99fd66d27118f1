package gatewayapi_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/router"
)

// TestRouter_V1Beta1WritesThroughV1Beta1 checks on the API server that the
// gatewayapi:v1beta1 provider writes its HTTPRoute through
// gateway.networking.k8s.io/v1beta1 and the other names through v1: the
// managedFields entry of the router's field manager records the version of
// the write.
func TestRouter_V1Beta1WritesThroughV1Beta1(t *testing.T) {
	for provider, want := range map[string]string{
		"gatewayapi:v1beta1": "gateway.networking.k8s.io/v1beta1",
		"gatewayapi:v1":      "gateway.networking.k8s.io/v1",
		"gatewayapi":         "gateway.networking.k8s.io/v1",
	} {
		t.Run(provider, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			c, rt := setup(t, provider)
			g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
			g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 80, CanaryWeight: 20})).To(Succeed())
			var versions []string
			for _, mf := range live(g, c).ManagedFields {
				if mf.Manager == router.FieldManager {
					versions = append(versions, mf.APIVersion)
				}
			}
			g.Expect(versions).To(ConsistOf(want))
			g.Expect(rt.GetRoutes(ctx, c)).To(Equal(router.Routes{PrimaryWeight: 80, CanaryWeight: 20}))
			g.Expect(rt.Finalize(ctx, c)).To(Succeed())
		})
	}
}
