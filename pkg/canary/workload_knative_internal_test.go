package canary

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// knSvc builds a Knative Service "app" at generation 3 with a status.
func knSvc(observed int64, created, ready string, conds ...any) *unstructured.Unstructured {
	svc := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"observedGeneration": observed, "latestCreatedRevisionName": created, "latestReadyRevisionName": ready, "conditions": conds,
	}}}
	svc.SetGroupVersionKind(knativeServiceGVK)
	svc.SetName("app")
	svc.SetGeneration(3)
	return svc
}

func readyCond(status, reason, msg string) map[string]any {
	return map[string]any{"type": "Ready", "status": status, "reason": reason, "message": msg}
}

func TestKnativeTargetState(t *testing.T) {
	tests := []struct {
		name string
		svc  *unstructured.Unstructured
		want WorkloadState
	}{{
		name: "ready",
		svc:  knSvc(3, "app-00002", "app-00002", readyCond("True", "", "")),
		want: WorkloadState{Exists: true, Ready: true, TemplateHash: "app-00002", ScaledToZero: true},
	}, {
		name: "generation not observed: the status may describe the previous template",
		svc:  knSvc(2, "app-00002", "app-00002", readyCond("True", "", "")),
		want: WorkloadState{Exists: true, TemplateHash: "app-00002", ScaledToZero: true,
			NotReadyMessage: "Knative Service app: waiting for Knative to observe generation 3"},
	}, {
		name: "no revision yet",
		svc:  knSvc(3, "", "", readyCond("Unknown", "", "")),
		want: WorkloadState{Exists: true, ScaledToZero: true, NotReadyMessage: "Knative Service app: no revision created yet"},
	}, {
		name: "latest revision starting",
		svc:  knSvc(3, "app-00002", "app-00001", readyCond("Unknown", "RevisionMissing", "")),
		want: WorkloadState{Exists: true, TemplateHash: "app-00002", ScaledToZero: true,
			NotReadyMessage: `Knative Service app: revision app-00002 is not ready (latest ready: "app-00001")`},
	}, {
		name: "latest revision failed: Knative's reason is reported",
		svc:  knSvc(3, "app-00002", "app-00001", readyCond("False", "RevisionFailed", "image pull failed")),
		want: WorkloadState{Exists: true, TemplateHash: "app-00002", ScaledToZero: true, NotReadyReason: knativeRevisionFailed,
			NotReadyMessage: `Knative Service app: revision app-00002 is not ready (latest ready: "app-00001"): RevisionFailed: image pull failed`},
	}, {
		name: "revision ready but the Service not (its route failed)",
		svc:  knSvc(3, "app-00002", "app-00002", readyCond("False", "IngressNotConfigured", "no ingress")),
		want: WorkloadState{Exists: true, TemplateHash: "app-00002", ScaledToZero: true, NotReadyReason: knativeRevisionFailed,
			NotReadyMessage: "Knative Service app is not Ready (IngressNotConfigured): no ingress"},
	}, {
		name: "no Ready condition yet",
		svc:  knSvc(3, "app-00002", "app-00002"),
		want: WorkloadState{Exists: true, TemplateHash: "app-00002", ScaledToZero: true,
			NotReadyMessage: "Knative Service app is not Ready (NoReadyCondition): Knative has not reported the Ready condition yet"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(knativeTargetState(tt.svc)).To(Equal(tt.want))
		})
	}
}

func TestKnativeUnsupported(t *testing.T) {
	canary := func(mutate func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
		c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "app"},
			Analysis:  &sluicev1beta1.CanaryAnalysis{StepWeight: 10},
		}}
		mutate(c)
		return c
	}
	g := NewWithT(t)
	g.Expect(isKnativeTarget(canary(func(*sluicev1beta1.Canary) {}))).To(BeTrue())
	g.Expect(isKnativeTarget(canary(func(c *sluicev1beta1.Canary) { c.Spec.TargetRef.APIVersion = "v1" }))).To(BeFalse())
	g.Expect(knativeUnsupported(canary(func(*sluicev1beta1.Canary) {}), knativeProvider)).To(BeEmpty())
	g.Expect(knativeUnsupported(canary(func(*sluicev1beta1.Canary) {}), "gatewayapi")).To(HavePrefix("the target is a Knative Service: only provider knative can route its revisions (spec.provider is gatewayapi)"))
	g.Expect(knativeUnsupported(canary(func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Iterations: 5}
	}), knativeProvider)).To(HavePrefix("the target is a Knative Service: blue/green"))
	g.Expect(knativeUnsupported(canary(func(c *sluicev1beta1.Canary) {
		c.Spec.AutoscalerRef = &sluicev1beta1.AutoscalerReference{Name: "hpa"}
	}), knativeProvider)).To(HaveSuffix("no autoscalerRef"))
}

// promoteRecorder is a router that records the revisions it is asked to promote.
type promoteRecorder struct {
	router.Router // nil: applyKnative must call nothing else
	promoted      []string
}

func (p *promoteRecorder) PromoteRevision(_ context.Context, _ *sluicev1beta1.Canary, revision string) error {
	p.promoted = append(p.promoted, revision)
	return nil
}

// notPromoter is a router without PromoteRevision.
type notPromoter struct{ router.Router }

func TestApplyKnative(t *testing.T) {
	scope := func(rt router.Router, analysed, primary, latest string) *scope {
		c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{Name: "app"}}}
		c.Status.LastAppliedSpec = analysed
		return &scope{canary: c, provider: knativeProvider, router: rt,
			obs: Observation{Target: WorkloadState{TemplateHash: latest}, Primary: WorkloadState{TemplateHash: primary}}}
	}
	r := &CanaryReconciler{}
	ctx := context.Background()

	t.Run("promotes the analysed revision, not a newer one", func(t *testing.T) {
		g := NewWithT(t)
		rec := &promoteRecorder{}
		handled, err := r.applyKnative(ctx, scope(rec, "app-00002", "app-00001", "app-00003"), PromotePrimary)
		g.Expect(handled).To(BeTrue())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rec.promoted).To(Equal([]string{"app-00002"}))
	})
	t.Run("nothing to do once the analysed revision is the primary", func(t *testing.T) {
		g := NewWithT(t)
		rec := &promoteRecorder{}
		handled, err := r.applyKnative(ctx, scope(rec, "app-00002", "app-00002", "app-00002"), PromotePrimary)
		g.Expect(handled).To(BeTrue())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rec.promoted).To(BeEmpty())
	})
	t.Run("a router that cannot promote a revision", func(t *testing.T) {
		g := NewWithT(t)
		handled, err := r.applyKnative(ctx, scope(notPromoter{}, "app-00002", "app-00001", "app-00002"), PromotePrimary)
		g.Expect(handled).To(BeTrue())
		g.Expect(err).To(MatchError("provider knative cannot promote a Knative revision"))
	})
	t.Run("workload actions are no-ops, routing actions are the engine's", func(t *testing.T) {
		g := NewWithT(t)
		rec := &promoteRecorder{}
		for _, k := range []ActionKind{ScaleTargetUp, ScaleTargetToZero, RestoreApex, RestoreTargetTemplate, ReleasePrimary, EnsureBaseline, RemoveBaseline} {
			handled, err := r.applyKnative(ctx, scope(rec, "app-00002", "app-00001", "app-00002"), k)
			g.Expect(handled).To(BeTrue(), string(k))
			g.Expect(err).NotTo(HaveOccurred(), string(k))
		}
		for _, k := range []ActionKind{SetRoutes, RunPostRollout} {
			handled, _ := r.applyKnative(ctx, scope(rec, "app-00002", "app-00001", "app-00002"), k)
			g.Expect(handled).To(BeFalse(), string(k))
		}
		g.Expect(rec.promoted).To(BeEmpty())
	})
}
