package canary_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// progressing reads the Progressing condition as "<reason>: <message>".
func (f *fixture) progressing(name string) func() string {
	return func() string {
		c := &sluicev1beta1.Canary{}
		if err := f.get(c, name); err != nil {
			return err.Error()
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ProgressingCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason + ": " + cond.Message
	}
}

// Given a Knative Service and a Canary with provider knative, when a new
// revision is reported not ready and then ready (as Knative does while the
// revision's pods start), then the engine sees it ready, shifts traffic to
// it, waits at the gate and promotes it.
//
// This is the test of issue 20's "not ready then ready" bug: the progress
// deadline is far beyond the test's waits, so a readiness the engine missed
// shows as a timeout here rather than as a rollback. (The bug was in the
// earlier version of this test: it waited for "revision … is not ready" in
// the Ready condition, which carries the wait's detail only once the release
// has failed, so it wrote "ready" after the rollback at the deadline. The
// wait's detail is in the Progressing condition.)
func TestCanary_KnativeRelease(t *testing.T) {
	f := newFixture(t, withKnative)
	f.hooks.set("/gate", http.StatusForbidden)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](3600)
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("gate", "confirm-promotion", f.hooks.url("/gate"))}
	})

	// Initialised: revision 1 is the primary and serves everything; no
	// primary clone, no generated Services.
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.knativeTraffic("app")).Should(Equal("app-00001: app-00001=100 latest=0"))
	var objs unstructured.UnstructuredList
	objs.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ServiceList"})
	f.g.Expect(env.Client.List(f.ctx, &objs, client.InNamespace(f.ns))).To(Succeed())
	f.g.Expect(objs.Items).To(BeEmpty(), "no Service is generated for a Knative target")
	f.g.Expect(f.get(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service"}}, "app-primary")).NotTo(Succeed())

	// A new template: Knative creates revision 2 and reports it not ready
	// (Ready False with its reason). The Canary says so; traffic stays on
	// the primary.
	f.knativeImage("app", "2")
	f.knativeRevision("app", 2, false)
	f.g.Eventually(f.progressing("app")).Should(Equal(`KnativeNotReady: Knative Service app: revision app-00002 is not ready (latest ready: "app-00001"): RevisionFailed: Revision app-00002 failed with message: image pull failed`))
	f.g.Consistently(f.knativeTraffic("app"), "2s").Should(Equal("app-00001: app-00001=100 latest=0"))
	f.g.Expect(f.phase("app")()).To(Equal(sluicev1beta1.CanaryPhaseProgressing))

	// The same revision becomes ready: traffic moves to it, up to the gate.
	f.knativeRevision("app", 2, true)
	f.waitPhase("app", sluicev1beta1.CanaryPhaseWaitingPromotion)
	f.g.Eventually(f.knativeTraffic("app")).Should(Equal("app-00001: app-00001=50 latest=50"))

	// Promotion: revision 2 becomes the primary and takes all traffic.
	f.hooks.set("/gate", http.StatusOK)
	c := f.waitPhase("app", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00002"))
	f.g.Expect(c.Status.CanaryWeight).To(BeZero())
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00002: app-00002=100 latest=0"))
	f.g.Expect(f.condition("app", sluicev1beta1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))

	// Deleted: Knative's latest revision takes all traffic, the annotation goes.
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "app")) }, "60s").Should(BeTrue())
	f.g.Expect(f.knativeTraffic("app")()).To(Equal(": latest=100"))
}

// Given a released Knative Service, when a new revision passes readiness
// but fails its checks (a rollout webhook answering 500, threshold 1), then
// all traffic goes back to the primary revision, which stays the primary.
func TestCanary_KnativeRollbackOnFailedCheck(t *testing.T) {
	f := newFixture(t, withKnative)
	f.hooks.set("/check", http.StatusInternalServerError)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](3600)
		c.Spec.Analysis.Threshold = 1
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("check", "rollout", f.hooks.url("/check"))}
	})
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)

	f.knativeImage("app", "2")
	f.knativeRevision("app", 2, false)
	f.g.Eventually(f.progressing("app")).Should(HavePrefix("KnativeNotReady: "))
	f.knativeRevision("app", 2, true)
	c := f.waitPhase("app", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(f.hooks.count("/check")()).To(BeNumerically(">=", 1))
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00001"))
	f.g.Expect(c.Status.LastAppliedSpec).To(Equal("app-00002"))
	f.g.Expect(c.Status.CanaryWeight).To(BeZero())
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00001: app-00001=100 latest=0"))
	f.g.Consistently(f.phase("app"), "2s").Should(Equal(sluicev1beta1.CanaryPhaseFailed))
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00001: app-00001=100 latest=0"))

	// Deleted after the rollback: the promoted revision keeps serving
	// (pinned by name; the rejected latest revision gets nothing), the
	// annotation goes, and the Canary goes without waiting for a deadline.
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "app")) }, "60s").Should(BeTrue())
	f.g.Expect(f.knativeTraffic("app")()).To(Equal(": app-00001=100 latest=0"))
}

// Given a Knative Service whose new revision never becomes ready, when the
// progress deadline passes, then all traffic goes back to revision 1; a
// fixed revision 3 is then released and promoted.
func TestCanary_KnativeRollbackAtDeadline(t *testing.T) {
	f := newFixture(t, withKnative)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	})
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)

	f.knativeImage("app", "2")
	f.knativeRevision("app", 2, false)
	c := f.waitPhase("app", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00001"))
	f.g.Expect(c.Status.LastAppliedSpec).To(Equal("app-00002"))
	stalled := f.condition("app", sluicev1beta1.StalledCondition)
	f.g.Expect(stalled.Reason).To(Equal("ProgressDeadlineExceeded"))
	f.g.Expect(stalled.Message).To(ContainSubstring("RevisionFailed: Revision app-00002 failed with message: image pull failed"))
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00001: app-00001=100 latest=0"))
	f.g.Consistently(f.phase("app"), "2s").Should(Equal(sluicev1beta1.CanaryPhaseFailed))

	f.knativeImage("app", "3")
	f.knativeRevision("app", 3, true)
	c = f.waitPhase("app", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(c.Status.LastPromotedSpec).To(Equal("app-00003"))
	f.g.Expect(f.knativeTraffic("app")()).To(Equal("app-00003: app-00003=100 latest=0"))
}

// Given an initialised Canary whose next reconcile is an hour away (its
// analysis interval), when Knative reports a new revision by a status write
// only, then the Canary starts the release at once: the engine watches
// Knative Services, and a status change enqueues the Canary.
func TestCanary_KnativeStatusWakesTheCanary(t *testing.T) {
	f := newFixture(t, withKnative)
	f.knativeService("app")
	f.canary("app", "app", knativeCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Interval = &metav1.Duration{Duration: time.Hour}
	})
	f.waitPhase("app", sluicev1beta1.CanaryPhaseInitialized)
	// Let the initialisation's own requeues settle.
	f.g.Eventually(f.knativeTraffic("app")).Should(Equal("app-00001: app-00001=100 latest=0"))
	time.Sleep(2 * time.Second)

	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeGVK)
	f.g.Eventually(func() error {
		if err := f.get(svc, "app"); err != nil {
			return err
		}
		_ = unstructured.SetNestedField(svc.Object, "app-00002", "status", "latestCreatedRevisionName")
		return env.Client.Status().Update(f.ctx, svc)
	}).Should(Succeed())
	f.g.Eventually(f.phase("app"), "30s").Should(Equal(sluicev1beta1.CanaryPhaseProgressing))
}

// Given a Knative Service target, when the Canary asks for what a Knative
// release cannot do, then it is Stalled with a message that names what is
// supported, and the Service's traffic is not touched.
func TestCanary_KnativeUnsupported(t *testing.T) {
	f := newFixture(t, withKnative)
	f.knativeService("app")
	tests := []struct {
		name   string
		mutate func(*sluicev1beta1.Canary)
		want   string
	}{{
		name:   "istio",
		mutate: func(c *sluicev1beta1.Canary) { c.Spec.Provider = sluicev1beta1.ProviderIstio },
		want:   "UnsupportedTarget: the target is a Knative Service: only provider knative can route its revisions (spec.provider is istio); a Knative Service is released with provider knative, the progressive canary strategy (stepWeight or stepWeights) and no autoscalerRef",
	}, {
		name:   "kubernetes",
		mutate: func(c *sluicev1beta1.Canary) { c.Spec.Provider = sluicev1beta1.ProviderKubernetes },
		want:   "UnsupportedTarget: the target is a Knative Service: only provider knative can route its revisions (spec.provider is kubernetes); a Knative Service is released with provider knative, the progressive canary strategy (stepWeight or stepWeights) and no autoscalerRef",
	}, {
		name: "bluegreen",
		mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight, c.Spec.Analysis.Iterations = 0, 0, 3
		},
		want: "UnsupportedTarget: the target is a Knative Service: blue/green (analysis.iterations) is not supported, remove analysis.iterations; a Knative Service is released with provider knative, the progressive canary strategy (stepWeight or stepWeights) and no autoscalerRef",
	}, {
		name: "autoscaler",
		mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "app"}
		},
		want: "UnsupportedTarget: the target is a Knative Service, which Knative scales itself: remove spec.autoscalerRef; a Knative Service is released with provider knative, the progressive canary strategy (stepWeight or stepWeights) and no autoscalerRef",
	}, {
		name: "abtesting",
		mutate: func(c *sluicev1beta1.Canary) {
			c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight, c.Spec.Analysis.Iterations = 0, 0, 3
			c.Spec.Analysis.Match = []sluicev1beta1.HTTPMatchRequest{{Headers: map[string]sluicev1beta1.StringMatch{"x-canary": {Exact: "1"}}}}
		},
		want: "UnsupportedFeature: provider knative cannot route by request match",
	}}
	for _, tt := range tests {
		f.canary(tt.name, "app", knativeCanary, tt.mutate)
	}
	for _, tt := range tests {
		f.g.Eventually(func() string {
			c := f.condition(tt.name, sluicev1beta1.StalledCondition)
			if c == nil {
				return ""
			}
			return c.Reason + ": " + c.Message
		}).Should(HavePrefix(tt.want), tt.name)
	}
	// A baseline is refused when the Canary is created (CRD validation).
	bad := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "baseline", Namespace: f.ns}, Spec: sluicev1beta1.CanarySpec{
		TargetRef: sluicev1beta1.TargetReference{Name: "app"}, Analysis: &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}},
	}}
	knativeCanary(bad)
	bad.Spec.Analysis.Baseline = true
	f.g.Expect(env.Client.Create(f.ctx, bad)).To(MatchError(ContainSubstring("spec.analysis.baseline needs a Deployment target")))
	// None of them took the Service over.
	f.g.Expect(f.knativeTraffic("app")()).To(Equal(":"))
}
