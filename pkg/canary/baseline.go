package canary

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The baseline (spec.analysis.baseline) is a Deployment <target>-baseline
// running the primary's pod template, the version in production, with as
// many replicas as the canary, behind a Service <apex>-baseline. It exists
// only during a release: it is created when the release starts, receives
// the canary's weight while the analysis runs, and is deleted once the
// traffic has drained from it after promotion or rollback. Deleting, rather
// than scaling to zero, leaves no object behind that Git does not know of,
// and a release always starts from fresh pods of the same age as the
// canary's, which is what makes the comparison fair.

// The engine deletes the baseline after each release.
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=delete
// +kubebuilder:rbac:groups="",resources=services,verbs=delete

// observeBaseline reads the baseline Deployment. One that exists and is not
// the Canary's stalls a Canary that asks for a baseline: it would be taken
// over, or deleted after the release.
func (r *CanaryReconciler) observeBaseline(ctx context.Context, s *scope) error {
	c := s.canary
	if c.Spec.TargetRef.Kind != "Deployment" {
		return nil
	}
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.BaselineName()}, d)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("failed to get the baseline: %w", err)
	case !metav1.IsControlledBy(d, c):
		if c.BaselineEnabled() {
			return stall("BaselineNotOwned", "Deployment %s exists and is not owned by this Canary: rename or delete it, or remove spec.analysis.baseline", c.BaselineName())
		}
		return nil
	}
	s.baseline = d
	ready, why := deployment{d}.ready(c.CanaryReadyThreshold())
	s.obs.Baseline = WorkloadState{Exists: true, Ready: ready, NotReadyMessage: why, ScaledToZero: ptr.Deref(d.Spec.Replicas, 1) == 0}
	return nil
}

// newBaseline builds the baseline Deployment from the primary: its pod
// template (with the primary's config copies) and selector, with the
// selector label's value "<value>-baseline", and the canary's replicas.
func newBaseline(c *sluicev1beta1.Canary, primary *appsv1.Deployment, label, value string, replicas int32) *appsv1.Deployment {
	sel := primary.Spec.Selector.DeepCopy()
	sel.MatchLabels[label] = value + "-baseline"
	tmpl := *primary.Spec.Template.DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[label] = value + "-baseline"
	// The primary's metadata has the GitOps keys removed already (newPrimary).
	meta := metav1.ObjectMeta{Name: c.BaselineName(), Namespace: c.Namespace,
		Labels: withoutGitOps(primary.Labels), Annotations: withoutGitOps(primary.Annotations)}
	meta.Labels[label] = value + "-baseline"
	delete(meta.Annotations, sluicev1beta1.TemplateHashAnnotation)
	d := &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: sel, Template: tmpl,
		Strategy: primary.Spec.Strategy, MinReadySeconds: primary.Spec.MinReadySeconds,
		RevisionHistoryLimit: primary.Spec.RevisionHistoryLimit, ProgressDeadlineSeconds: primary.Spec.ProgressDeadlineSeconds,
	}}
	d.Annotations[sluicev1beta1.SpecHashAnnotation] = hashBytes(fmt.Appendf(nil, "%v|%v|%v|%d", d.Labels, d.Annotations, d.Spec.Template.String()+d.Spec.Selector.String(), replicas), 16)
	return d
}

// ensureBaseline creates the baseline Deployment and Service, or brings
// them up to date (the canary's replica count, a primary changed by hand).
// An unchanged baseline costs no request.
func (r *CanaryReconciler) ensureBaseline(ctx context.Context, s *scope) error {
	c := s.canary
	primary, ok := s.primary.(deployment)
	if s.primary == nil || !ok {
		return fmt.Errorf("the baseline needs the primary Deployment %s", c.PrimaryName())
	}
	replicas := int32(1)
	if t, ok := s.target.(deployment); ok {
		replicas = ptr.Deref(t.Spec.Replicas, 1)
	}
	if replicas == 0 {
		// The canary is being scaled up to the primary's size (ScaleTargetUp).
		replicas = max(replicasOf(primary), 1)
	}
	want := newBaseline(c, primary.Deployment, s.label, s.value, replicas)
	var live client.Object
	if s.baseline != nil {
		live = s.baseline
		if s.baseline.Annotations[sluicev1beta1.SpecHashAnnotation] == want.Annotations[sluicev1beta1.SpecHashAnnotation] {
			return r.ensureBaselineService(ctx, s)
		}
	}
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return err
	}
	if err := r.applyOwned(ctx, want, live); err != nil {
		return fmt.Errorf("failed to apply the baseline: %w", err)
	}
	return r.ensureBaselineService(ctx, s)
}

// ensureBaselineService creates <apex>-baseline with the generated
// Services' ports, selecting the baseline's pods.
func (r *CanaryReconciler) ensureBaselineService(ctx context.Context, s *scope) error {
	ports := servicePorts(s.canary, s.target.podTemplate())
	return r.ensureService(ctx, s, s.canary.BaselineServiceName(), map[string]string{s.label: s.value + "-baseline"}, ports, nil, false)
}

// removeBaseline deletes the baseline's Service, then its Deployment, when
// they are the Canary's; absent ones are fine (the action is retried until
// both are gone).
func (r *CanaryReconciler) removeBaseline(ctx context.Context, s *scope) error {
	c := s.canary
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.BaselineServiceName()}, svc)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to get the baseline Service: %w", err)
	case metav1.IsControlledBy(svc, c):
		if err := r.Client.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("failed to delete the baseline Service %s: %w", svc.Name, err)
		}
	}
	if s.baseline == nil {
		return nil
	}
	if err := r.Client.Delete(ctx, s.baseline, client.Preconditions{UID: &s.baseline.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to delete the baseline %s: %w", s.baseline.Name, err)
	}
	return nil
}
