package canary

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ensurePrimaryAutoscaler keeps <hpa>-primary, which scales the primary, in
// step with the target's HorizontalPodAutoscaler.
func (r *CanaryReconciler) ensurePrimaryAutoscaler(ctx context.Context, s *scope) error {
	ref := s.canary.Spec.AutoscalerRef
	if ref == nil || ref.Kind != "HorizontalPodAutoscaler" {
		return nil
	}
	src := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.canary.Namespace, Name: ref.Name}, src); err != nil {
		return fmt.Errorf("failed to get HorizontalPodAutoscaler %s: %w", ref.Name, err)
	}
	spec := *src.Spec.DeepCopy()
	spec.ScaleTargetRef.Name = s.canary.PrimaryName()
	if o := ref.PrimaryScalerReplicas; o != nil {
		if o.MinReplicas != nil {
			spec.MinReplicas = o.MinReplicas
		}
		if o.MaxReplicas != nil {
			spec.MaxReplicas = *o.MaxReplicas
		}
	}
	data, _ := spec.Marshal()
	hash := hashBytes(data, 16)
	name := ref.Name + "-primary"
	live := &autoscalingv2.HorizontalPodAutoscaler{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.canary.Namespace, Name: name}, live)
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("failed to get HorizontalPodAutoscaler %s: %w", name, err)
	case live.Annotations[sluicev1beta1.SpecHashAnnotation] == hash:
		return nil
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.canary.Namespace, Labels: withoutGitOps(src.Labels),
			Annotations: map[string]string{sluicev1beta1.SpecHashAnnotation: hash}},
		Spec: spec,
	}
	if err := controllerutil.SetControllerReference(s.canary, hpa, r.Scheme); err != nil {
		return err
	}
	var current client.Object
	if live != nil {
		current = live
	}
	return r.applyOwned(ctx, hpa, current)
}
