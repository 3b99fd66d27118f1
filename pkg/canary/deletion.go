package canary

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// copySuffix ends the names of the primary's config copies.
const copySuffix = "-primary"

// restoreTargetTemplate gives the target the primary's pod template, which
// is the promoted revision, with the target's own selector label and the
// names of the configs the copies were made from. The configs themselves
// are not rewritten: they belong to the user (or GitOps).
func (r *CanaryReconciler) restoreTargetTemplate(ctx context.Context, s *scope) error {
	if s.primary == nil || s.target == nil {
		return nil
	}
	tmpl := s.primary.podTemplate().DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	tmpl.Labels[s.label] = s.value
	renames := map[string]string{}
	for _, ref := range referencedConfigs(&tmpl.Spec) {
		if !strings.HasSuffix(ref.name, copySuffix) {
			continue
		}
		owned, err := r.ownedByCanary(ctx, s.canary, kindOf(ref), ref.name)
		if err != nil {
			return err
		}
		if owned {
			renames[ref.key()] = strings.TrimSuffix(ref.name, copySuffix)
		}
	}
	renameConfigs(&tmpl.Spec, renames)
	base := s.target.DeepCopyObject().(client.Object)
	*s.target.podTemplate() = *tmpl
	if err := r.Client.Patch(ctx, s.target.object(), client.MergeFrom(base)); err != nil {
		return fmt.Errorf("failed to restore the promoted template on %s: %w", s.target.GetName(), err)
	}
	return nil
}

// releasePrimary makes the primary outlive the Canary: it, its config
// copies and its autoscaler lose the Canary's owner reference, and the apex
// Service, released too, selects its pods.
func (r *CanaryReconciler) releasePrimary(ctx context.Context, s *scope) error {
	if s.primary == nil {
		return nil
	}
	objs := []client.Object{s.primary.object()}
	for _, ref := range referencedConfigs(&s.primary.podTemplate().Spec) {
		if strings.HasSuffix(ref.name, copySuffix) {
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kindOf(ref)))
			m.SetNamespace(s.canary.Namespace)
			m.SetName(ref.name)
			objs = append(objs, m)
		}
	}
	if ref := s.canary.Spec.AutoscalerRef; ref != nil && ref.Kind == "HorizontalPodAutoscaler" {
		objs = append(objs, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: s.canary.Namespace, Name: ref.Name + copySuffix}})
	}
	if sts, ok := s.primary.(statefulSet); ok && sts.Spec.ServiceName != "" {
		// The released primary's pods keep their DNS names.
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.canary.Namespace, Name: sts.Spec.ServiceName}})
	}
	objs = append(objs, primaryScaledObjectRef(s.canary)...)
	for _, o := range objs {
		if err := r.release(ctx, s.canary, o, nil); err != nil {
			return err
		}
	}
	apex, _, _ := s.canary.ServiceNames()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.canary.Namespace, Name: apex}}
	return r.release(ctx, s.canary, svc, func() {
		svc.Spec.Selector = map[string]string{s.label: s.value + copySuffix}
		delete(svc.Annotations, sluicev1beta1.SpecHashAnnotation)
	})
}

// release reads an object and, when the Canary controls it, removes the
// Canary's owner reference (and applies mutate) in one patch.
func (r *CanaryReconciler) release(ctx context.Context, c *sluicev1beta1.Canary, obj client.Object, mutate func()) error {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, c) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	obj.SetOwnerReferences(slices.DeleteFunc(obj.GetOwnerReferences(), func(o metav1.OwnerReference) bool { return o.UID == c.UID }))
	if mutate != nil {
		mutate()
	}
	if err := r.Client.Patch(ctx, obj, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("failed to release %s from the Canary: %w", obj.GetName(), err)
	}
	return nil
}

// ownedByCanary tells whether a ConfigMap or Secret is controlled by the Canary.
func (r *CanaryReconciler) ownedByCanary(ctx context.Context, c *sluicev1beta1.Canary, kind, name string) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to get %s %s: %w", kind, name, err)
	}
	return metav1.IsControlledBy(m, c), nil
}
