package traefik_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

// TestRouter_FinalizeReleasesToTheApex checks on the API server that
// Finalize turns the TraefikService Sluice created into one entry for the
// apex Service, keeping nativeLB, the fields a user added to the primary
// entry and the users' own entries, and that the result outlives the Canary.
func TestRouter_FinalizeReleasesToTheApex(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t, traefik.WithNativeLB())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 60, CanaryWeight: 40})).To(Succeed())
	u := get(g, c.Namespace, "app")
	s := services(u)
	s[0].(map[string]any)["passHostHeader"] = true
	s = append(s, map[string]any{"name": "shadow", "port": int64(80), "weight": int64(0)})
	g.Expect(unstructured.SetNestedSlice(u.Object, s, "spec", "weighted", "services")).To(Succeed())
	g.Expect(env.Client.Update(ctx, u)).To(Succeed())

	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	live := get(g, c.Namespace, "app")
	g.Expect(services(live)).To(Equal([]any{
		map[string]any{"name": "app", "port": int64(80), "weight": int64(100), "nativeLB": true, "passHostHeader": true},
		map[string]any{"name": "shadow", "port": int64(80), "weight": int64(0)},
	}))
	g.Expect(router.ControlledBy(live, c.UID)).To(BeFalse())
	_, err := rt.GetRoutes(ctx, c)
	g.Expect(err).To(MatchError(ContainSubstring("does not route to both")), "nothing routes to the primary or the canary any more")
}

// TestRouter_FinalizeReleasesAnOwnerReferenceOfAnotherManager checks that an
// owner reference to the Canary written by another field manager (an
// update, not Sluice's apply) is removed too.
func TestRouter_FinalizeReleasesAnOwnerReferenceOfAnotherManager(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c, rt := setup(t)
	orig := traefikService("app", []any{
		map[string]any{"name": "app-primary", "port": int64(80), "weight": int64(100)},
		map[string]any{"name": "app-canary", "port": int64(80), "weight": int64(0)},
	})
	orig.SetNamespace(c.Namespace)
	orig.SetOwnerReferences(append(orig.GetOwnerReferences(), router.OwnerReference(c)))
	g.Expect(env.Client.Create(ctx, orig)).To(Succeed())

	g.Expect(rt.Finalize(ctx, c)).To(Succeed())
	live := get(g, c.Namespace, "app")
	g.Expect(live.GetOwnerReferences()).To(BeEmpty())
	g.Expect(services(live)).To(Equal([]any{map[string]any{"name": "app", "port": int64(80), "weight": int64(100)}}))
}
