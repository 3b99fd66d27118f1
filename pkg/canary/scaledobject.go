package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// KEDA's ScaledObject is read and written as an unstructured object: KEDA's
// Go module needs a newer Go than Sluice builds with, and the engine touches
// only a handful of its fields (scaleTargetRef, the triggers' queries, the
// replica bounds, one annotation), all of them stable in keda.sh/v1alpha1.

// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;update;patch

// ScaledObjectKind is the autoscalerRef kind of a KEDA ScaledObject.
const ScaledObjectKind = "ScaledObject"

// kedaPausedReplicasAnnotation makes KEDA hold a ScaledObject's target at the
// given replicas and stop scaling it. The engine sets it to "0" on the
// target's ScaledObject while the target is scaled to zero, as Flagger does,
// so that KEDA does not scale back up a target the engine emptied.
const kedaPausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"

// scaledObjectGVK is the one ScaledObject version the engine supports.
var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: ScaledObjectKind}

func newScaledObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(scaledObjectGVK)
	return u
}

// usesScaledObject tells whether the Canary's autoscaler is a ScaledObject.
func usesScaledObject(c *sluicev1beta1.Canary) bool {
	return c.Spec.AutoscalerRef != nil && c.Spec.AutoscalerRef.Kind == ScaledObjectKind
}

// observeScaledObject stalls a Canary whose ScaledObject cannot be used: the
// wrong apiVersion, KEDA's CRD not installed, or the ScaledObject missing.
// Each needs the user (or the cluster's admin) to act, so each is a Stalled
// reason rather than an error retried with backoff.
func (r *CanaryReconciler) observeScaledObject(ctx context.Context, c *sluicev1beta1.Canary) error {
	ref := c.Spec.AutoscalerRef
	if ref.APIVersion != scaledObjectGVK.GroupVersion().String() {
		return stall("UnsupportedAutoscaler", "autoscalerRef %s %s has apiVersion %q: ScaledObjects are supported as %s",
			ref.Kind, ref.Name, ref.APIVersion, scaledObjectGVK.GroupVersion())
	}
	if installed, err := scaledObjectsInstalled(r.Client.RESTMapper()); err != nil {
		return err
	} else if !installed {
		return stall("AutoscalerCRDNotInstalled", "autoscalerRef %s %s needs KEDA's ScaledObject CRD (%s), which is not installed in the cluster: install KEDA or use a HorizontalPodAutoscaler",
			ref.Kind, ref.Name, scaledObjectGVK.GroupVersion())
	}
	so := newScaledObject()
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, so); err != nil {
		if apierrors.IsNotFound(err) {
			return stall("AutoscalerNotFound", "ScaledObject %s not found in namespace %s", ref.Name, c.Namespace)
		}
		return fmt.Errorf("failed to get ScaledObject %s: %w", ref.Name, err)
	}
	return nil
}

// scaledObjectsInstalled asks the API server's discovery (through the
// mapper, which looks again when a kind is unknown) whether KEDA's
// ScaledObject CRD is served.
func scaledObjectsInstalled(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(scaledObjectGVK.GroupKind(), scaledObjectGVK.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("failed to look up the ScaledObject kind: %w", err)
	}
}

// watchScaledObjects makes a change to a ScaledObject named by a Canary
// reconcile that Canary, when KEDA is installed as the manager starts (a
// watch on a kind the API server does not serve would keep the manager from
// starting). Without KEDA a Canary naming a ScaledObject is Stalled anyway.
func (r *CanaryReconciler) watchScaledObjects(mgr ctrl.Manager, b *builder.Builder) *builder.Builder {
	if ok, err := scaledObjectsInstalled(mgr.GetRESTMapper()); err != nil || !ok {
		return b
	}
	return b.Watches(newScaledObject(), r.mapBy(autoscalerIndex, func(o client.Object) string { return o.GetName() }))
}

// primaryScaledObject derives <so>-primary from the target's ScaledObject:
// it scales the primary, its triggers' queries are rewritten for the
// primary, its bounds come from primaryScalerReplicas when given, and it is
// never paused (the annotation that pauses the target's is not copied).
func primaryScaledObject(c *sluicev1beta1.Canary, src *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ref := c.Spec.AutoscalerRef
	// NestedMap copies: rewriting the primary's spec leaves the source alone.
	spec, ok, err := unstructured.NestedMap(src.Object, "spec")
	if err != nil || !ok {
		return nil, fmt.Errorf("ScaledObject %s has no spec", src.GetName())
	}
	if err := unstructured.SetNestedField(spec, c.PrimaryName(), "scaleTargetRef", "name"); err != nil {
		return nil, fmt.Errorf("failed to set the primary ScaledObject's scaleTargetRef: %w", err)
	}
	// KEDA names the HPA it makes keda-hpa-<so> unless told otherwise; a
	// name the user chose must not be shared by the two ScaledObjects.
	if name, _, _ := unstructured.NestedString(spec, "advanced", "horizontalPodAutoscalerConfig", "name"); name != "" {
		_ = unstructured.SetNestedField(spec, name+"-primary", "advanced", "horizontalPodAutoscalerConfig", "name")
	}
	if triggers, ok := spec["triggers"].([]any); ok {
		for _, t := range triggers {
			trigger, ok := t.(map[string]any)
			if !ok {
				continue
			}
			rewriteTriggerQuery(c, trigger)
		}
	}
	if o := ref.PrimaryScalerReplicas; o != nil {
		if o.MinReplicas != nil {
			spec["minReplicaCount"] = int64(*o.MinReplicas)
		}
		if o.MaxReplicas != nil {
			spec["maxReplicaCount"] = int64(*o.MaxReplicas)
		}
	}
	data, err := json.Marshal(spec) // map keys are sorted: the hash is stable
	if err != nil {
		return nil, fmt.Errorf("failed to encode the primary ScaledObject: %w", err)
	}
	so := newScaledObject()
	so.SetNamespace(c.Namespace)
	so.SetName(ref.Name + "-primary")
	so.SetLabels(withoutGitOps(src.GetLabels()))
	so.SetAnnotations(map[string]string{sluicev1beta1.SpecHashAnnotation: hashBytes(data, 16)})
	so.Object["spec"] = spec
	return so, nil
}

// rewriteTriggerQuery gives a trigger the primary's query. With
// primaryScalerQueries, a named trigger gets the query given for its name
// (unnamed triggers keep theirs). Without it, as Flagger does, the target's
// name (and <target>-canary) in the query becomes <target>-primary: a best
// effort that users check, and replace with primaryScalerQueries when wrong.
func rewriteTriggerQuery(c *sluicev1beta1.Canary, trigger map[string]any) {
	md, ok := trigger["metadata"].(map[string]any)
	if !ok {
		return
	}
	if queries := c.Spec.AutoscalerRef.PrimaryScalerQueries; queries != nil {
		name, _ := trigger["name"].(string)
		if q, ok := queries[name]; ok && name != "" {
			md["query"] = q
		}
		return
	}
	q, ok := md["query"].(string)
	if !ok {
		return
	}
	target, primary := c.Spec.TargetRef.Name, c.PrimaryName()
	// A placeholder no query contains keeps "<target>-canary" and a
	// "<target>-primary" already there from becoming "<target>-primary-…".
	const placeholder = "\x00primary\x00"
	q = strings.ReplaceAll(q, primary, placeholder)
	q = strings.ReplaceAll(q, target+"-canary", placeholder)
	q = strings.ReplaceAll(q, target, placeholder)
	md["query"] = strings.ReplaceAll(q, placeholder, primary)
}

// ensurePrimaryScaledObject creates <so>-primary when it is missing and,
// when promote is set, brings it in step with the target's ScaledObject.
// As in Flagger, a change to the target's ScaledObject reaches the primary
// with the promotion of the release it belongs to, not before.
func (r *CanaryReconciler) ensurePrimaryScaledObject(ctx context.Context, s *scope, promote bool) error {
	if !usesScaledObject(s.canary) {
		return nil
	}
	ref := s.canary.Spec.AutoscalerRef
	src := newScaledObject()
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.canary.Namespace, Name: ref.Name}, src); err != nil {
		return fmt.Errorf("failed to get ScaledObject %s: %w", ref.Name, err)
	}
	want, err := primaryScaledObject(s.canary, src)
	if err != nil {
		return err
	}
	live := newScaledObject()
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(want), live)
	var current client.Object
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to get ScaledObject %s: %w", want.GetName(), err)
	case !promote || live.GetAnnotations()[sluicev1beta1.SpecHashAnnotation] == want.GetAnnotations()[sluicev1beta1.SpecHashAnnotation]:
		return nil
	default:
		current = live
	}
	if err := controllerutil.SetControllerReference(s.canary, want, r.Scheme); err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Applying the primary ScaledObject", "ScaledObject", want.GetName())
	return r.applyOwned(ctx, want, current)
}

// pauseTargetScaledObject pauses the target's ScaledObject at zero replicas
// (pause) or resumes it, with one merge patch of the annotation, and only
// when it changes.
func (r *CanaryReconciler) pauseTargetScaledObject(ctx context.Context, s *scope, pause bool) error {
	if !usesScaledObject(s.canary) {
		return nil
	}
	so := newScaledObject()
	key := client.ObjectKey{Namespace: s.canary.Namespace, Name: s.canary.Spec.AutoscalerRef.Name}
	if err := r.Client.Get(ctx, key, so); err != nil {
		if apierrors.IsNotFound(err) && !pause {
			return nil // nothing to resume
		}
		return fmt.Errorf("failed to get ScaledObject %s: %w", key.Name, err)
	}
	value, paused := so.GetAnnotations()[kedaPausedReplicasAnnotation]
	var patch string
	switch {
	case pause && (!paused || value != "0"):
		patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, kedaPausedReplicasAnnotation)
	case !pause && paused:
		patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, kedaPausedReplicasAnnotation)
	default:
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Setting the target's ScaledObject paused", "ScaledObject", key.Name, "paused", pause)
	if err := r.Client.Patch(ctx, so, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return fmt.Errorf("failed to set ScaledObject %s paused=%t: %w", key.Name, pause, err)
	}
	return nil
}

// primaryScaledObjectRef is <so>-primary for releasePrimary, which hands it
// over with the primary when the Canary goes.
func primaryScaledObjectRef(c *sluicev1beta1.Canary) []client.Object {
	if !usesScaledObject(c) {
		return nil
	}
	so := newScaledObject()
	so.SetNamespace(c.Namespace)
	so.SetName(c.Spec.AutoscalerRef.Name + "-primary")
	return []client.Object{so}
}
