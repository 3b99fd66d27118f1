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

	return ctrl.NewControllerManagedBy(mgr).
		For(&sluicev1beta1.Canary{}).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&appsv1.Deployment{}, r.mapBy(targetIndex, func(o client.Object) string { return "Deployment/" + o.GetName() })).
		Watches(&appsv1.DaemonSet{}, r.mapBy(targetIndex, func(o client.Object) string { return "DaemonSet/" + o.GetName() })).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, r.mapBy(autoscalerIndex, func(o client.Object) string { return o.GetName() })).
		Watches(configMapMeta, r.mapBy(configIndex, func(o client.Object) string { return kindConfigMap + "/" + o.GetName() }), builder.OnlyMetadata).
		Watches(secretMeta, r.mapBy(configIndex, func(o client.Object) string { return kindSecret + "/" + o.GetName() }), builder.OnlyMetadata).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1), SkipNameValidation: &r.SkipNameValidation}).
		Complete(r)
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
