package canary

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Field indexes on Canaries, used to map a changed object to its Canaries.
const (
	targetIndex     = "sluice.dev/target"     // "<Kind>/<name>"
	configIndex     = "sluice.dev/configs"    // "configmap/<name>", "secret/<name>"
	autoscalerIndex = "sluice.dev/autoscaler" // "<name>"
)

// SetupWithManager registers the indexes, the watches and the controller.
func (r *CanaryReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	r.slots = newSlots(r.MaxConcurrentRollouts)
	r.slots.informers = mgr.GetCache()
	// The engine's writes carry its own field manager, so GitSync can tell
	// the fields it owns from the ones the routers and GitSync own.
	r.Client = client.WithFieldOwner(r.Client, sluicev1beta1.FieldManagerEngine)
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &sluicev1beta1.Canary{}, targetIndex, func(o client.Object) []string {
		c := o.(*sluicev1beta1.Canary)
		return []string{c.Spec.TargetRef.Kind + "/" + c.Spec.TargetRef.Name}
	}); err != nil {
		return fmt.Errorf("failed to index Canaries by target: %w", err)
	}
	if err := idx.IndexField(ctx, &sluicev1beta1.Canary{}, configIndex, func(o client.Object) []string {
		c := o.(*sluicev1beta1.Canary)
		keys := make([]string, 0, len(c.Status.TrackedConfigs))
		for k := range c.Status.TrackedConfigs {
			keys = append(keys, k)
		}
		return keys
	}); err != nil {
		return fmt.Errorf("failed to index Canaries by config: %w", err)
	}
	if err := idx.IndexField(ctx, &sluicev1beta1.Canary{}, autoscalerIndex, func(o client.Object) []string {
		if ref := o.(*sluicev1beta1.Canary).Spec.AutoscalerRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("failed to index Canaries by autoscaler: %w", err)
	}

	configMapMeta := &metav1.PartialObjectMetadata{}
	configMapMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	secretMeta := &metav1.PartialObjectMetadata{}
	secretMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))

	b := ctrl.NewControllerManagedBy(mgr).
		For(&sluicev1beta1.Canary{}).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&appsv1.Deployment{}, r.mapBy(targetIndex, func(o client.Object) string { return "Deployment/" + o.GetName() })).
		Watches(&appsv1.DaemonSet{}, r.mapBy(targetIndex, func(o client.Object) string { return "DaemonSet/" + o.GetName() })).
		Watches(&appsv1.StatefulSet{}, r.mapBy(targetIndex, func(o client.Object) string { return "StatefulSet/" + o.GetName() })).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, r.mapBy(autoscalerIndex, func(o client.Object) string { return o.GetName() })).
		Watches(configMapMeta, r.mapBy(configIndex, func(o client.Object) string { return kindConfigMap + "/" + o.GetName() }), builder.OnlyMetadata).
		Watches(secretMeta, r.mapBy(configIndex, func(o client.Object) string { return kindSecret + "/" + o.GetName() }), builder.OnlyMetadata).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1), SkipNameValidation: &r.SkipNameValidation})
	// A change to a routing object (a hand edit, another controller) heals
	// within one reconcile, not at the next interval. Only spec changes
	// count: the status a gateway writes does not concern the engine.
	if r.Routers != nil {
		for _, kind := range r.Routers.InstalledKinds(mgr.GetRESTMapper(), mgr.GetScheme()) {
			b = b.Watches(kind, handler.EnqueueRequestsFromMapFunc(byCanaryLabel), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
		}
	}
	b = r.watchScaledObjects(mgr, b)
	b = r.watchKnativeServices(mgr, b)
	return b.Complete(r)
}

// byCanaryLabel enqueues the Canary a routing object is labelled with.
func byCanaryLabel(_ context.Context, o client.Object) []reconcile.Request {
	name, ok := o.GetLabels()[sluicev1beta1.CanaryLabel]
	if !ok || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// mapBy enqueues the Canaries of an object's namespace whose index holds the object's key.
func (r *CanaryReconciler) mapBy(index string, key func(client.Object) string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &sluicev1beta1.CanaryList{}
		if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: key(o)}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Failed to list Canaries", "index", index)
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, c := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
		}
		return reqs
	})
}
