package knative_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/knative"
)

// A release: the first revision becomes the primary, a new revision gets
// the canary's share, Promote makes it the primary.
func TestRouter_Release(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "knative")
	g.Expect(err).NotTo(HaveOccurred())
	c := newCanary(ns)
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	reg := router.NewRegistry()
	knative.Register(reg)
	rt, err := reg.New(knative.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(router.Unsupported(rt, c, knative.Name)).To(BeEmpty())

	g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("Knative Service app not found")))
	svc := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"template": map[string]any{
		"spec": map[string]any{"containers": []any{map[string]any{"image": "podinfo:1"}}}}}}}
	svc.SetGroupVersionKind(knative.GVK)
	svc.SetName("app")
	svc.SetNamespace(ns)
	g.Expect(env.Client.Create(ctx, svc)).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(MatchError(ContainSubstring("has no revision yet")))
	g.Expect(setLatest(ctx, env.Client, ns, "app-00001")).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())

	traffic := func() []any {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(knative.GVK)
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)).To(Succeed())
		t, _, _ := unstructured.NestedSlice(live.Object, "spec", "traffic")
		return t
	}
	g.Expect(traffic()).To(Equal([]any{
		map[string]any{"revisionName": "app-00001", "percent": int64(100)},
		map[string]any{"latestRevision": true, "percent": int64(0)}}))

	// A new revision: the primary stays, the latest gets the canary's share.
	g.Expect(setLatest(ctx, env.Client, ns, "app-00002")).To(Succeed())
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 30})).To(Succeed())
	g.Expect(traffic()).To(Equal([]any{
		map[string]any{"revisionName": "app-00001", "percent": int64(70)},
		map[string]any{"latestRevision": true, "percent": int64(30)}}))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 70, CanaryWeight: 20})).To(MatchError(ContainSubstring("sum to 100")))

	g.Expect(rt.(*knative.Router).Promote(ctx, c)).To(Succeed())
	g.Expect(traffic()).To(Equal([]any{
		map[string]any{"revisionName": "app-00002", "percent": int64(100)},
		map[string]any{"latestRevision": true, "percent": int64(0)}}))

	// PromoteRevision promotes the named revision, not the latest: the
	// engine names the one it analysed.
	g.Expect(setLatest(ctx, env.Client, ns, "app-00003")).To(Succeed())
	g.Expect(rt.(*knative.Router).PromoteRevision(ctx, c, "")).To(MatchError("no revision to promote"))
	g.Expect(rt.SetRoutes(ctx, c, router.Routes{PrimaryWeight: 50, CanaryWeight: 50})).To(Succeed())
	g.Expect(rt.(*knative.Router).PromoteRevision(ctx, c, "app-00002")).To(Succeed())
	g.Expect(traffic()).To(Equal([]any{
		map[string]any{"revisionName": "app-00002", "percent": int64(100)},
		map[string]any{"latestRevision": true, "percent": int64(0)}}))

	// FinalizeToRevision keeps the named revision serving, without the annotation.
	g.Expect(rt.(*knative.Router).FinalizeToRevision(ctx, c, "app-00002")).To(Succeed())
	g.Expect(traffic()).To(Equal([]any{
		map[string]any{"revisionName": "app-00002", "percent": int64(100)},
		map[string]any{"latestRevision": true, "percent": int64(0)}}))
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(knative.GVK)
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, live)).To(Succeed())
	g.Expect(live.GetAnnotations()).NotTo(HaveKey(knative.PrimaryRevisionAnnotation))
	g.Expect(rt.(*knative.Router).FinalizeToRevision(ctx, c, "")).To(MatchError("no revision to keep serving"))
}

func TestRouter_CheckSpec(t *testing.T) {
	g := NewWithT(t)
	c := newCanary("ns")
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{StepWeight: 10}
	c.Spec.TargetRef = sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}
	g.Expect(router.Unsupported(&knative.Router{}, c, knative.Name)).To(ConsistOf(
		"provider knative releases a Knative Service: spec.targetRef must be apiVersion serving.knative.dev/v1, kind Service (not apps/v1 Deployment)"))
}
