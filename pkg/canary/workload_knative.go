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

// knativeRevisionFailed is the Progressing reason while Knative reports the
// Service not Ready (status False) for the canary revision.
const knativeRevisionFailed = "KnativeNotReady"

// knativeServiceGVK is the group, version and kind of a Knative Service.
var knativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// RBAC of the engine for Knative Service targets: it reads and watches the
// target (a status change, such as a revision becoming ready, must wake the
// Canary), and the knative router it calls patches spec.traffic. In the
// engine's role, not only the knative router's: the watch starts whenever
// the Knative CRDs are installed, and a watch the role forbids would keep
// the engine's cache from syncing.
// +kubebuilder:rbac:groups=serving.knative.dev,resources=services,verbs=get;list;watch;patch

// revisionPromoter is the optional router capability a Knative target
// needs: make the analysed revision the primary.
type revisionPromoter interface {
	PromoteRevision(ctx context.Context, c *sluicev1beta1.Canary, revision string) error
}

// revisionFinalizer is the optional router capability a deletion after a
// rollback needs: leave the promoted revision serving, not the latest.
type revisionFinalizer interface {
	FinalizeToRevision(ctx context.Context, c *sluicev1beta1.Canary, revision string) error
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
	if msg := knativeUnsupported(c, s.provider); msg != "" && !s.obs.Deleting {
		return stall("UnsupportedTarget", "%s", msg)
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
	s.obs.Target = knativeTargetState(svc)
	s.obs.Sources = Sources{Target: sourceOf(svc)}
	if s.obs.Deleting && knativeRejected(&c.Status, s.obs.Target.TemplateHash) {
		// The latest revision is the one a rollback rejected, and Knative
		// revisions cannot be given the promoted template back: the
		// deletion keeps the promoted revision serving instead (applyKnative,
		// FinalizeRoutes), so the target "is" the promoted revision, ready.
		s.knativeKeep = c.Status.LastPromotedSpec
		s.obs.Target = WorkloadState{Exists: true, Ready: true, TemplateHash: s.knativeKeep, ScaledToZero: true}
	}
	if primary != "" {
		// The primary revision served all traffic when it was promoted,
		// and Knative keeps a revision with traffic running.
		s.obs.Primary = WorkloadState{Exists: true, Ready: true, TemplateHash: primary}
	}
	return nil
}

// knativeUnsupported says what a Canary asks of a Knative Service target
// that the engine cannot do, naming what is supported, or "" when nothing.
// The router's own capability check (observeObjects) already refuses what
// the knative router lacks (A/B testing, mirroring, session affinity), and
// CRD validation refuses a baseline for any target but a Deployment: what
// is left is what only the engine knows.
func knativeUnsupported(c *sluicev1beta1.Canary, provider string) string {
	const supported = "a Knative Service is released with provider knative, the progressive canary strategy (stepWeight or stepWeights) and no autoscalerRef"
	switch {
	case provider != knativeProvider:
		return fmt.Sprintf("the target is a Knative Service: only provider knative can route its revisions (spec.provider is %s); %s", provider, supported)
	case c.Strategy(provider) == sluicev1beta1.StrategyBlueGreen:
		// Blue/green analyses a canary that gets no user traffic, through
		// the <svc>-canary Service; a Knative revision has none (no
		// tagged revision URL is routed).
		return "the target is a Knative Service: blue/green (analysis.iterations) is not supported, remove analysis.iterations; " + supported
	case c.Spec.AutoscalerRef != nil:
		return "the target is a Knative Service, which Knative scales itself: remove spec.autoscalerRef; " + supported
	}
	return ""
}

// knativeRejected tells whether the latest revision is the one a rollback
// rejected, while another is promoted (rejectedOnTarget, for a revision).
func knativeRejected(st *sluicev1beta1.CanaryStatus, latest string) bool {
	return st.LastPromotedSpec != "" && st.LastAppliedSpec != st.LastPromotedSpec && failedStep(st) != "" && latest == st.LastAppliedSpec
}

// knativeTargetState describes the Service's latest revision as the
// canary: its name is the "template hash" (a new revision is a new release),
// it is ready when Knative reports the Service Ready with the latest
// created revision also the latest ready one. It is always "scaled to
// zero": Knative scales a revision by its traffic, so there is nothing for
// the engine to scale down, and a finalising release must not wait for a
// revision created meanwhile (Decide releases that one next).
func knativeTargetState(svc *unstructured.Unstructured) WorkloadState {
	created, _, _ := unstructured.NestedString(svc.Object, "status", "latestCreatedRevisionName")
	ready, _, _ := unstructured.NestedString(svc.Object, "status", "latestReadyRevisionName")
	observed, _, _ := unstructured.NestedInt64(svc.Object, "status", "observedGeneration")
	st := WorkloadState{Exists: true, TemplateHash: created, ScaledToZero: true}
	name := svc.GetName()
	switch {
	case svc.GetGeneration() > observed:
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: waiting for Knative to observe generation %d", name, svc.GetGeneration())
	case created == "":
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: no revision created yet", name)
	case ready != created:
		st.NotReadyMessage = fmt.Sprintf("Knative Service %s: revision %s is not ready (latest ready: %q)", name, created, ready)
		// Knative says why on the Service's Ready condition (a failed
		// image pull, a crashing container): the user needs that, not
		// only that the revision is late.
		if status, reason, msg := knativeReady(svc); status == "False" {
			st.NotReadyMessage += fmt.Sprintf(": %s: %s", reason, msg)
			st.NotReadyReason = knativeRevisionFailed
		}
	default:
		status, reason, msg := knativeReady(svc)
		if status != "True" {
			st.NotReadyMessage = fmt.Sprintf("Knative Service %s is not Ready (%s): %s", name, reason, msg)
			if status == "False" {
				st.NotReadyReason = knativeRevisionFailed
			}
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
// for every target (SetRoutes, RunPostRollout, FinalizeRoutes but after a
// rollback).
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
		// Promote the revision the analysis ran on (status.lastAppliedSpec),
		// never "the latest": one created since was not analysed, and
		// Decide starts a release for it once this one is done.
		analysed := s.canary.Status.LastAppliedSpec
		if analysed == "" || analysed == s.obs.Primary.TemplateHash {
			return true, nil
		}
		return true, p.PromoteRevision(ctx, s.canary, analysed)
	case FinalizeRoutes:
		if s.knativeKeep == "" {
			return false, nil // the router's Finalize: all traffic to the latest revision
		}
		f, ok := s.router.(revisionFinalizer)
		if !ok {
			return true, fmt.Errorf("provider %s cannot keep a Knative revision serving", s.provider)
		}
		return true, f.FinalizeToRevision(ctx, s.canary, s.knativeKeep)
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
