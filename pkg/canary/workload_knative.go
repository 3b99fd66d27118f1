package canary

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// A Knative Service target, as in Flagger: Knative keeps every revision of
// the Service, so the engine makes no primary clone and no ClusterIP
// Services. The "primary" is the revision named by the router's annotation
// sluice.dev/primary-revision, the "canary" is the Service's latest created
// revision, and the knative router splits spec.traffic between the two.
// The revision names stand in for the template hashes of the other
// workloads: a new revision is a new release, and promoting it is making it
// the primary revision (the router's Promote).

// knativeProvider is the provider that routes a Knative Service.
const knativeProvider = "knative"

// knativePrimaryRevisionAnnotation is the knative router's record of the
// primary revision (pkg/router/knative.PrimaryRevisionAnnotation; not
// imported, so that the engine does not depend on a router).
const knativePrimaryRevisionAnnotation = "sluice.dev/primary-revision"

// knativeServiceGVK is the group, version and kind of a Knative Service.
var knativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// revisionPromoter is the optional router capability a Knative target
// needs: make the latest revision the primary.
type revisionPromoter interface {
	Promote(ctx context.Context, c *sluicev1beta1.Canary) error
}

// isKnativeTarget tells whether a Canary's target is a Knative Service.
func isKnativeTarget(c *sluicev1beta1.Canary) bool {
	t := c.Spec.TargetRef
	return t.Kind == knativeServiceGVK.Kind && strings.HasPrefix(t.APIVersion, knativeServiceGVK.Group+"/")
}

// observeKnative reads a Knative Service target from the API server (it
// is watched only when its CRD is installed, see watchKnativeServices).
func (r *CanaryReconciler) observeKnative(ctx context.Context, s *scope) error {
	c := s.canary
	if s.provider != knativeProvider && !s.obs.Deleting {
		return stall("UnsupportedTarget", "the target is a Knative Service: only provider knative can route its revisions (spec.provider is %s)", s.provider)
	}
	if c.Spec.AutoscalerRef != nil && !s.obs.Deleting {
		return stall("UnsupportedTarget", "the target is a Knative Service, which Knative scales itself: remove spec.autoscalerRef")
	}
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeServiceGVK)
	// Read live: the watch below keeps a cached copy, which may lag
	// behind the revision Knative just reported.
	var reader client.Reader = r.Client
	if r.APIReader != nil {
		reader = r.APIReader
	}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return stall("TargetNotFound", "Knative Service %s not found in namespace %s", c.Spec.TargetRef.Name, c.Namespace)
		}
		return fmt.Errorf("failed to get the Knative Service %s: %w", c.Spec.TargetRef.Name, err)
	}
	s.knative = svc
	primary := svc.GetAnnotations()[knativePrimaryRevisionAnnotation]
	s.obs.Target = knativeTargetState(svc, primary)
	s.obs.Sources = Sources{Target: sourceOf(svc)}
	if primary != "" {
		// The primary revision served all traffic when it was promoted,
		// and Knative keeps a revision with traffic running.
		s.obs.Primary = WorkloadState{Exists: true, Ready: true, TemplateHash: primary}
	}
	return nil
}

// knativeTargetState describes the Service's latest revision as the
// canary: its name is the "template hash" (a new revision is a new release),
// it is ready when Knative reports the Service Ready with the latest
// created revision also the latest ready one, and it is "scaled to zero"
// when it is the primary revision (there is no canary revision to run:
// Knative scales revisions without traffic down by itself).
func knativeTargetState(svc *unstructured.Unstructured, primary string) WorkloadState {
	created, _, _ := unstructured.NestedString(svc.Object, "status", "latestCreatedRevisionName")
	ready, _, _ := unstructured.NestedString(svc.Object, "status", "latestReadyRevisionName")
	observed, _, _ := unstructured.NestedInt64(svc.Object, "status", "observedGeneration")
	st := WorkloadState{Exists: true, TemplateHash: created, ScaledToZero: created != "" && created == primary}
	name := svc.GetName()
	switch {
	case svc.GetGeneration() > observed:
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: waiting for Knative to observe generation %d", name, svc.GetGeneration())
	case created == "":
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: no revision created yet", name)
	case ready != created:
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: revision %s is not ready (latest ready: %q)", name, created, ready)
	default:
		status, reason, msg := knativeReady(svc)
		if status != "True" {
			st.NotReadyMessage = fmt.Sprintf("Knative Service %s is not Ready (%s): %s", name, reason, msg)
		} else {
			st.Ready = true
		}
	}
	return st
}

// knativeReady reads the Service's Ready condition.
func knativeReady(svc *unstructured.Unstructured) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		status, _ = m["status"].(string)
		reason, _ = m["reason"].(string)
		message, _ = m["message"].(string)
		return status, reason, message
	}
	return "Unknown", "NoReadyCondition", "Knative has not reported the Ready condition yet"
}

// applyKnative carries out an action for a Knative Service target, whose
// primary and canary are revisions of the one Service: there is no primary
// clone, no generated Service, no pods of Sluice's to scale and no template
// to restore. It returns handled false for the actions that are the same
// for every target (SetRoutes, RunPostRollout, FinalizeRoutes).
func (r *CanaryReconciler) applyKnative(ctx context.Context, s *scope, kind ActionKind) (handled bool, err error) {
	switch kind {
	case EnsureObjects:
		// The router records the primary revision and owns spec.traffic.
		return true, s.router.Reconcile(ctx, s.canary)
	case PromotePrimary:
		p, ok := s.router.(revisionPromoter)
		if !ok {
			return true, fmt.Errorf("provider %s cannot promote a Knative revision", s.provider)
		}
		switch s.obs.Target.TemplateHash {
		case s.obs.Primary.TemplateHash:
			return true, nil
		case s.canary.Status.LastAppliedSpec:
			return true, p.Promote(ctx, s.canary)
		}
		// Promote makes the latest revision the primary: a revision
		// created since the analysis must not be promoted unanalysed.
		return true, fmt.Errorf("knative Service %s has a revision %s newer than the analysed %s: not promoting it", s.canary.Spec.TargetRef.Name, s.obs.Target.TemplateHash, s.canary.Status.LastAppliedSpec)
	case ScaleTargetUp, ScaleTargetToZero, RestoreApex, RestoreTargetTemplate, ReleasePrimary, EnsureBaseline, RemoveBaseline:
		// Knative scales revisions by their traffic; the rest concerns
		// objects a Knative target does not have.
		return true, nil
	}
	return false, nil
}

// watchKnativeServices reconciles the Canaries of a Knative Service when it
// changes (a new revision is created or becomes ready: Knative writes
// status), when the Knative CRDs are installed; a watch on a missing kind
// would keep the manager from starting. Without it a new revision would be
// seen at the idle resync only.
func (r *CanaryReconciler) watchKnativeServices(mgr ctrl.Manager, b *builder.Builder) *builder.Builder {
	if _, err := mgr.GetRESTMapper().RESTMapping(knativeServiceGVK.GroupKind(), knativeServiceGVK.Version); err != nil {
		return b
	}
	svc := &unstructured.Unstructured{}
	svc.SetGroupVersionKind(knativeServiceGVK)
	return b.Watches(svc, r.mapBy(targetIndex, func(o client.Object) string { return knativeServiceGVK.Kind + "/" + o.GetName() }))
}
