package canary_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	knativerouter "github.com/sluice-cd/sluice/pkg/router/knative"
)

// No Knative controller runs in the test control plane: the tests write the
// Knative Service's status as Knative's would (a revision is created, then
// becomes ready or fails).

var knativeGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// withKnative registers the real knative router.
func withKnative(r *canary.CanaryReconciler) { knativerouter.Register(r.Routers) }

// knativeCanary makes a Canary release a Knative Service in two steps of 50%.
func knativeCanary(c *sluicev1beta1.Canary) {
	c.Spec.Provider = knativerouter.Name
	c.Spec.TargetRef = sluicev1beta1.TargetReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: c.Spec.TargetRef.Name}
	c.Spec.Analysis.Iterations = 0
	c.Spec.Analysis.StepWeight = 50
	c.Spec.Analysis.MaxWeight = 50
}

// knativeService creates a Knative Service whose revision 1 is ready.
func (f *fixture) knativeService(name string) {
	f.t.Helper()
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeGVK)
	svc.SetName(name)
	svc.SetNamespace(f.ns)
	svc.Object["spec"] = map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"image": "example.com/app:1"}},
	}}}
	f.g.Expect(env.Client.Create(f.ctx, svc)).To(Succeed())
	f.knativeRevision(name, 1, true)
	go f.knativeObserve(name)
}

// knativeObserve plays Knative's reconciler for spec changes that create no
// revision (the router's spec.traffic): it marks the generation observed.
// Writes conflict rather than overwrite, so it never undoes knativeRevision.
func (f *fixture) knativeObserve(name string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		svc := &unstructured.Unstructured{}
		svc.SetGroupVersionKind(knativeGVK)
		if err := f.get(svc, name); err != nil {
			continue
		}
		observed, _, _ := unstructured.NestedInt64(svc.Object, "status", "observedGeneration")
		if observed >= svc.GetGeneration() || f.knativeTemplateChanged(svc) {
			continue
		}
		_ = unstructured.SetNestedField(svc.Object, svc.GetGeneration(), "status", "observedGeneration")
		_ = env.Client.Status().Update(f.ctx, svc)
	}
}

// knativeTemplateChanged tells whether the template changed since the last
// revision (recorded by knativeRevision): that generation is observed when
// the test creates the revision.
func (f *fixture) knativeTemplateChanged(svc *unstructured.Unstructured) bool {
	tmpl, _, _ := unstructured.NestedSlice(svc.Object, "spec", "template", "spec", "containers")
	return fmt.Sprint(tmpl) != svc.GetAnnotations()["test.sluice.dev/revision-template"]
}

// knativeRevision plays Knative: the Service's current generation has
// created revision n, which is ready or failed.
func (f *fixture) knativeRevision(name string, n int, ready bool) {
	f.t.Helper()
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeGVK)
	f.g.Eventually(func() error {
		if err := f.get(svc, name); err != nil {
			return err
		}
		rev := fmt.Sprintf("%s-%05d", name, n)
		latestReady, _, _ := unstructured.NestedString(svc.Object, "status", "latestReadyRevisionName")
		cond := map[string]any{"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "Revision " + rev + " failed with message: image pull failed",
			"lastTransitionTime": "2026-01-01T00:00:00Z"}
		if ready {
			latestReady = rev
			cond = map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
		}
		svc.Object["status"] = map[string]any{
			"observedGeneration":        svc.GetGeneration(),
			"latestCreatedRevisionName": rev,
			"latestReadyRevisionName":   latestReady,
			"conditions":                []any{cond},
		}
		if err := env.Client.Status().Update(f.ctx, svc); err != nil {
			return err
		}
		// Record the template of the revision for knativeObserve.
		tmpl, _, _ := unstructured.NestedSlice(svc.Object, "spec", "template", "spec", "containers")
		return env.Client.Patch(f.ctx, svc, client.RawPatch(types.MergePatchType,
			fmt.Appendf(nil, `{"metadata":{"annotations":{"test.sluice.dev/revision-template":%q}}}`, fmt.Sprint(tmpl))))
	}).Should(Succeed())
}

// knativeImage changes the Service's template, as a user or GitSync would.
func (f *fixture) knativeImage(name, version string) {
	f.t.Helper()
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeGVK)
	f.update(svc, name, func() {
		_ = unstructured.SetNestedSlice(svc.Object, []any{map[string]any{"image": "example.com/app:" + version}}, "spec", "template", "spec", "containers")
	})
}

// knativeTraffic reads the primary revision annotation and spec.traffic as
// "<primary>: <revision or latest>=<percent> ...".
func (f *fixture) knativeTraffic(name string) func() (string, error) {
	return func() (string, error) {
		svc := &unstructured.Unstructured{}
		svc.SetGroupVersionKind(knativeGVK)
		if err := f.get(svc, name); err != nil {
			return "", err
		}
		out := svc.GetAnnotations()[knativerouter.PrimaryRevisionAnnotation] + ":"
		traffic, _, _ := unstructured.NestedSlice(svc.Object, "spec", "traffic")
		for _, t := range traffic {
			m, _ := t.(map[string]any)
			target, _ := m["revisionName"].(string)
			if latest, _ := m["latestRevision"].(bool); latest {
				target = "latest"
			}
			out += fmt.Sprintf(" %s=%v", target, m["percent"])
		}
		return out, nil
	}
}

func TestCanary_KnativeRelease(t *testing.T) {
	f := newFixture(t, withKnative)
	f.hooks.set("/gate", http.StatusForbidden)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](30)
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("gate", "confirm-promotion", f.hooks.url("/gate"))}
	})

	// Initialised: revision 1 is the primary and serves everything; no
	// primary clone, no generated Services.
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.knativeTraffic("app")).Should(Equal("app-00001: app-00001=100 latest=0"))
	var objs unstructured.UnstructuredList
	objs.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ServiceList"})
	f.g.Expect(env.Client.List(f.ctx, &objs)).To(Succeed())
	for _, o := range objs.Items {
		f.g.Expect(o.GetNamespace()).NotTo(Equal(f.ns), "no Service is generated for a Knative target")
	}
	f.g.Expect(f.get(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service"}}, "app-primary")).NotTo(Succeed())

	// A new template whose revision Knative reports ready at once. (Known
	// bug, see the report of issue 20: a revision first reported not ready
	// and then ready on the same revision is not seen ready by the engine.)
	f.knativeImage("app", "2")
	// Ready: traffic moves to the latest revision, up to the gate.
	f.knativeRevision("app", 2, true)
	f.waitPhase("app", sluicev1beta1.CanaryPhaseWaitingPromotion)
	f.g.Eventually(f.knativeTraffic("app")).Should(Equal("app-00001: app-00001=50 latest=50"))

	// Promotion: revision 2 becomes the primary and takes all traffic.
	f.hooks.set("/gate", http.StatusOK)
	c := f.waitPhase("app", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00002"))
	f.g.Expect(c.Status.CanaryWeight).To(BeZero())
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00002: app-00002=100 latest=0"))
}

func TestCanary_KnativeRollback(t *testing.T) {
	f := newFixture(t, withKnative)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	})
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)

	// Revision 2 never becomes ready: after the progress deadline all
	// traffic goes back to revision 1, which stays the primary.
	f.knativeImage("app", "2")
	f.knativeRevision("app", 2, false)
	c := f.waitPhase("app", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00001"))
	f.g.Expect(c.Status.LastAppliedSpec).To(Equal("app-00002"))
	f.g.Expect(f.condition("app", sluicev1beta1.StalledCondition).Reason).To(Equal("ProgressDeadlineExceeded"))
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00001: app-00001=100 latest=0"))
	f.g.Consistently(f.phase("app"), "2s").Should(Equal(sluicev1beta1.CanaryPhaseFailed))

	// A fixed revision 3 is released and promoted.
	f.knativeImage("app", "3")
	f.knativeRevision("app", 3, true)
	c = f.waitPhase("app", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00003"))
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00003: app-00003=100 latest=0"))
}

func TestCanary_KnativeNeedsKnativeProvider(t *testing.T) {
	f := newFixture(t, withKnative)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) { c.Spec.Provider = sluicev1beta1.ProviderIstio })
	f.g.Eventually(func() string {
		c := f.condition("app", sluicev1beta1.StalledCondition)
		if c == nil {
			return ""
		}
		return c.Reason + ": " + c.Message
	}).Should(ContainSubstring("UnsupportedTarget: the target is a Knative Service: only provider knative"))
}
