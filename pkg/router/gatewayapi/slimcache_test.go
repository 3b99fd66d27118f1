package gatewayapi_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/router"
)

// slimReads is a client whose reads return objects with only Sluice's
// managedFields entries, as the manager's cache holds them
// (canary.CacheTransform), and whose writes go to the API server.
type slimReads struct{ client.Client }

func (s slimReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := s.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	// The cache's own transform, so that this client keeps what the cache keeps.
	_, err := canary.CacheTransform(obj)
	return err
}

func managerNames(obj client.Object) []string {
	var out []string
	for _, e := range obj.GetManagedFields() {
		out = append(out, e.Manager)
	}
	return out
}

// TestRestoreAndRelease_KeepOtherManagersFromACachedRead: Restore and
// Release send a read object back whole (an update). Read from the
// manager's cache, that object holds only Sluice's managedFields entries;
// sent with them, the update would replace every other manager's entry.
func TestRestoreAndRelease_KeepOtherManagersFromACachedRead(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "gwapi-slim")
	g.Expect(err).NotTo(HaveOccurred())
	gvk := schema.GroupVersionKind{Group: gatewayv1.GroupVersion.Group, Version: gatewayv1.GroupVersion.Version, Kind: "HTTPRoute"}
	port := gatewayv1.PortNumber(80)

	// A user's route that Sluice took over (as sluice-router): it records
	// the original spec.
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users", Labels: map[string]string{"team": "web"}},
		Spec: gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
			{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "app", Port: &port}}}}}}},
	}
	g.Expect(env.Client.Create(ctx, route, client.FieldOwner("platform-team"))).To(Succeed())
	route.Annotations = map[string]string{router.OriginalAnnotation: `{"rules":[{"backendRefs":[{"name":"app","port":80}]}]}`}
	route.Spec.Rules[0].BackendRefs[0].Name = "app-primary"
	g.Expect(env.Client.Update(ctx, route, client.FieldOwner("sluice-router"))).To(Succeed())
	g.Expect(router.Restore(ctx, slimReads{env.Client}, gvk, ns, "users")).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(route), route)).To(Succeed())
	g.Expect(route.Annotations).NotTo(HaveKey(router.OriginalAnnotation))
	g.Expect(string(route.Spec.Rules[0].BackendRefs[0].Name)).To(Equal("app"))
	g.Expect(managerNames(route)).To(ContainElement("platform-team"), "Restore dropped the user's managedFields entry")

	// A route Sluice created for a Canary, whose owner reference another
	// manager also holds: Release removes the reference with an update.
	const uid = "00000000-0000-0000-0000-0000000000aa"
	owned := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owned",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "sluice.dev/v1beta1", Kind: "Canary", Name: "app", UID: uid}}}}
	g.Expect(env.Client.Create(ctx, owned, client.FieldOwner("platform-team"))).To(Succeed())
	desired := &unstructured.Unstructured{}
	desired.SetGroupVersionKind(gvk)
	desired.SetNamespace(ns)
	desired.SetName("owned")
	desired.Object["spec"] = map[string]any{"rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "app", "port": int64(80)}}}}}
	g.Expect(router.Release(ctx, slimReads{env.Client}, desired, uid)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(owned), owned)).To(Succeed())
	g.Expect(owned.OwnerReferences).To(BeEmpty())
	g.Expect(managerNames(owned)).To(ContainElement("platform-team"), "Release dropped the other manager's managedFields entry")
}
