package canary

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The design is in docs/canary.md, "StatefulSet targets".

// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch

type statefulSet struct{ *appsv1.StatefulSet }

func (d statefulSet) object() client.Object                { return d.StatefulSet }
func (d statefulSet) podTemplate() *corev1.PodTemplateSpec { return &d.Spec.Template }
func (d statefulSet) labelSelector() *metav1.LabelSelector { return d.Spec.Selector }
func (d statefulSet) scaledToZero() bool                   { return ptr.Deref(d.Spec.Replicas, 1) == 0 }

// ready is a Deployment's readiness in a StatefulSet's terms: every wanted
// pod runs the update revision and the roll is over (the controller sets
// currentRevision to updateRevision once the last pod is updated), and
// threshold percent are available (which honours minReadySeconds).
func (d statefulSet) ready(threshold int32) (bool, string) {
	s := d.Status
	want := ptr.Deref(d.Spec.Replicas, 1)
	switch {
	case d.Generation > s.ObservedGeneration:
		return false, fmt.Sprintf("StatefulSet %s: waiting for the spec to be observed", d.Name)
	case want == 0:
		return false, fmt.Sprintf("StatefulSet %s is scaled to zero", d.Name)
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("StatefulSet %s: %d of %d replicas updated", d.Name, s.UpdatedReplicas, want)
	case s.Replicas > want:
		return false, fmt.Sprintf("StatefulSet %s: %d replicas pending termination", d.Name, s.Replicas-want)
	case s.CurrentRevision != s.UpdateRevision:
		return false, fmt.Sprintf("StatefulSet %s: rolling out revision %s", d.Name, s.UpdateRevision)
	case s.AvailableReplicas < needed(want, threshold):
		return false, fmt.Sprintf("StatefulSet %s: %d of %d updated replicas available", d.Name, s.AvailableReplicas, want)
	}
	return true, ""
}

// replicasField is where a workload keeps its replica count: a Deployment's
// and a StatefulSet's spec.replicas; nil for a DaemonSet, which has none.
func replicasField(w workload) **int32 {
	switch t := w.(type) {
	case deployment:
		return &t.Spec.Replicas
	case statefulSet:
		return &t.Spec.Replicas
	}
	return nil
}

// primaryServiceName is the headless Service that governs the primary's
// pods: the target's with "-primary", so that the primary's pods get DNS
// names of their own and peers discovered through it are the primary's only.
func primaryServiceName(target string) string {
	if target == "" {
		return ""
	}
	return target + "-primary"
}

// primaryClaims copies the target's volume claim templates for the primary.
// The names stay: a claim is named <template>-<StatefulSet>-<ordinal>, so the
// primary's claims differ from the canary's by the StatefulSet's name.
func primaryClaims(in []corev1.PersistentVolumeClaim) []corev1.PersistentVolumeClaim {
	out := make([]corev1.PersistentVolumeClaim, 0, len(in))
	for _, c := range in {
		out = append(out, corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: c.Name, Labels: c.Labels, Annotations: c.Annotations},
			Spec:       *c.Spec.DeepCopy(),
		})
	}
	return out
}

// primaryUpdateStrategy is the target's without a partition: a partition
// keeps the pods below it on the old revision, so a promotion would never
// finish.
func primaryUpdateStrategy(in appsv1.StatefulSetUpdateStrategy) appsv1.StatefulSetUpdateStrategy {
	out := *in.DeepCopy()
	if out.RollingUpdate != nil {
		out.RollingUpdate.Partition = nil
	}
	return out
}

// primaryRetention keeps the target's choice for scale-down and always
// retains the claims when the primary is deleted: deleting a Canary deletes
// its primary, and the data that served production must not go with it.
func primaryRetention(in *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy) *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	out := &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if in != nil && in.WhenScaled != "" {
		out.WhenScaled = in.WhenScaled
	}
	return out
}

// newStatefulSetPrimary builds the primary StatefulSet of a target.
func newStatefulSetPrimary(t statefulSet, meta metav1.ObjectMeta, tmpl corev1.PodTemplateSpec, label, value string) *appsv1.StatefulSet {
	replicas := ptr.Deref(t.Spec.Replicas, 1)
	if replicas == 0 {
		replicas = 1
	}
	return &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, Selector: primarySelector(t.Spec.Selector, label, value), Template: tmpl,
		VolumeClaimTemplates: primaryClaims(t.Spec.VolumeClaimTemplates),
		ServiceName:          primaryServiceName(t.Spec.ServiceName),
		PodManagementPolicy:  t.Spec.PodManagementPolicy,
		UpdateStrategy:       primaryUpdateStrategy(t.Spec.UpdateStrategy),
		RevisionHistoryLimit: t.Spec.RevisionHistoryLimit, MinReadySeconds: t.Spec.MinReadySeconds,
		PersistentVolumeClaimRetentionPolicy: primaryRetention(t.Spec.PersistentVolumeClaimRetentionPolicy),
		Ordinals:                             t.Spec.Ordinals.DeepCopy(),
	}}
}

// checkStatefulSet finds what makes a StatefulSet target unable to release:
// a governing Service that would be the apex, an update strategy that
// cannot roll every pod, and changes to fields a StatefulSet cannot change
// in place, which the primary could never take.
func checkStatefulSet(c *sluicev1beta1.Canary, target, primary workload, label, value string) error {
	t, ok := target.(statefulSet)
	if !ok {
		return nil
	}
	apex, _, _ := c.ServiceNames()
	if t.Spec.ServiceName != "" && t.Spec.ServiceName == apex {
		return stall("UnsupportedTarget", "StatefulSet %s: spec.serviceName %s is the Canary's service name, so the headless Service that names the pods would be routed as the apex Service and the primary's would clash with %s-primary: rename the headless Service or set spec.service.name",
			t.Name, apex, apex)
	}
	if u := t.Spec.UpdateStrategy; u.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return stall("UnsupportedUpdateStrategy", "StatefulSet %s uses the OnDelete update strategy: its pods would take a new template only when deleted by hand, so neither the canary nor a promoted primary would run it; use RollingUpdate", t.Name)
	} else if u.RollingUpdate != nil && ptr.Deref(u.RollingUpdate.Partition, 0) > 0 {
		return stall("UnsupportedUpdateStrategy", "StatefulSet %s has updateStrategy.rollingUpdate.partition %d: the canary's pods below the partition would run the previous template and the analysis would judge the wrong revision; remove the partition",
			t.Name, *u.RollingUpdate.Partition)
	}
	p, ok := primary.(statefulSet)
	if !ok {
		return nil
	}
	if changed := immutableChanges(t, p, label, value); len(changed) > 0 {
		return stall("ImmutableFieldChanged", "StatefulSet %s changed %s, which a StatefulSet cannot change in place, so the primary %s cannot take it: revert the change, or recreate the primary with kubectl delete statefulset %s --cascade=orphan (its pods and claims stay and the new primary adopts them)",
			t.Name, strings.Join(changed, ", "), p.Name, p.Name)
	}
	return nil
}

// immutableChanges lists the fields the API server refuses to update on the
// primary whose wanted value (from the target) differs from the live one.
func immutableChanges(t, p statefulSet, label, value string) []string {
	var out []string
	if !equality.Semantic.DeepEqual(primarySelector(t.Spec.Selector, label, value), p.Spec.Selector) {
		out = append(out, "spec.selector")
	}
	if primaryServiceName(t.Spec.ServiceName) != p.Spec.ServiceName {
		out = append(out, "spec.serviceName")
	}
	if t.Spec.PodManagementPolicy != p.Spec.PodManagementPolicy {
		out = append(out, "spec.podManagementPolicy")
	}
	if !sameClaims(primaryClaims(t.Spec.VolumeClaimTemplates), p.Spec.VolumeClaimTemplates) {
		out = append(out, "spec.volumeClaimTemplates")
	}
	return out
}

// sameClaims compares claim templates by what the primary is given of them.
func sameClaims(want, live []corev1.PersistentVolumeClaim) bool {
	if len(want) != len(live) {
		return false
	}
	for i := range want {
		l := live[i]
		if want[i].Name != l.Name || !equality.Semantic.DeepEqual(want[i].Labels, l.Labels) ||
			!equality.Semantic.DeepEqual(want[i].Annotations, l.Annotations) || !equality.Semantic.DeepEqual(want[i].Spec, l.Spec) {
			return false
		}
	}
	return true
}

// ensurePrimaryHeadlessService creates the headless Service that governs the
// primary's pods, <serviceName>-primary, with the ports and the
// publishNotReadyAddresses of the target's when it exists.
func (r *CanaryReconciler) ensurePrimaryHeadlessService(ctx context.Context, s *scope) error {
	t, ok := s.target.(statefulSet)
	if !ok || t.Spec.ServiceName == "" {
		return nil
	}
	c := s.canary
	name := primaryServiceName(t.Spec.ServiceName)
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: map[string]string{s.label: name}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone,
			Selector: map[string]string{s.label: s.value + "-primary"}, Ports: servicePorts(c, t.podTemplate())},
	}
	governing := &corev1.Service{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: t.Spec.ServiceName}, governing); {
	case err == nil:
		want.Spec.PublishNotReadyAddresses = governing.Spec.PublishNotReadyAddresses
		if len(governing.Spec.Ports) > 0 {
			want.Spec.Ports = nil
			for _, p := range governing.Spec.Ports {
				want.Spec.Ports = append(want.Spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol,
					AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: p.TargetPort})
			}
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("failed to get Service %s: %w", t.Spec.ServiceName, err)
	}
	live := &corev1.Service{}
	switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("failed to get Service %s: %w", name, err)
	case !metav1.IsControlledBy(live, c):
		return fmt.Errorf("the Service %s exists and is not owned by this Canary: the primary StatefulSet needs it as its headless Service; rename or delete it", name)
	case live.Spec.PublishNotReadyAddresses == want.Spec.PublishNotReadyAddresses &&
		equality.Semantic.DeepEqual(live.Spec.Selector, want.Spec.Selector) && samePorts(live.Spec.Ports, want.Spec.Ports):
		return nil
	}
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return err
	}
	var liveObj client.Object // no typed nil: applyOwned upgrades a live object's fields
	if live != nil {
		liveObj = live
	}
	if err := r.applyOwned(ctx, want, liveObj); err != nil {
		return fmt.Errorf("failed to apply the primary's headless Service: %w", err)
	}
	return nil
}

// samePorts compares the fields of Service ports that the engine sets.
func samePorts(live, want []corev1.ServicePort) bool {
	if len(live) != len(want) {
		return false
	}
	for i := range want {
		l, w := live[i], want[i]
		if l.Name != w.Name || l.Port != w.Port || l.TargetPort != w.TargetPort ||
			(w.Protocol != "" && l.Protocol != w.Protocol) || ptr.Deref(l.AppProtocol, "") != ptr.Deref(w.AppProtocol, "") {
			return false
		}
	}
	return true
}

// kindOfWorkload names a workload's kind (typed objects read from the cache
// carry no TypeMeta).
func kindOfWorkload(w workload) string {
	switch w.(type) {
	case deployment:
		return "Deployment"
	case daemonSet:
		return "DaemonSet"
	case statefulSet:
		return "StatefulSet"
	}
	return "workload"
}

// selectorLabels are the labels the reconciler accepts as selector label.
func (r *CanaryReconciler) selectorLabels() []string {
	if len(r.SelectorLabels) == 0 {
		return DefaultSelectorLabels
	}
	return r.SelectorLabels
}
