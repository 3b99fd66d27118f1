package canary

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// sts builds a StatefulSet target "web" with a claim template "data".
func sts(mutate ...func(*appsv1.StatefulSet)) statefulSet {
	labels := map[string]string{"app": "web", "tier": "db"}
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels},
			ServiceName: "web-headless", PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0), MaxUnavailable: ptr.To(intstr.FromInt32(2))}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1.0"}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"backup": "daily"}},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			}},
			Ordinals:             &appsv1.StatefulSetOrdinals{Start: 5},
			MinReadySeconds:      7,
			RevisionHistoryLimit: ptr.To[int32](4),
		},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
			UpdatedReplicas: 3, CurrentRevision: "web-1", UpdateRevision: "web-1"},
	}
	for _, m := range mutate {
		m(s)
	}
	return statefulSet{s}
}

func stsCanary() *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps"},
		Spec: sluicev1beta1.CanarySpec{TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web"}}}
}

func TestStatefulSet_ready(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*appsv1.StatefulSet)
		threshold int32
		want      bool
		why       string
	}{
		{name: "all updated and available", threshold: 100, want: true},
		{name: "spec not observed", mutate: func(s *appsv1.StatefulSet) { s.Generation = 2 }, threshold: 100, why: "StatefulSet web: waiting for the spec to be observed"},
		{name: "scaled to zero", mutate: func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](0) }, threshold: 100, why: "StatefulSet web is scaled to zero"},
		{name: "rolling: not every pod updated", mutate: func(s *appsv1.StatefulSet) { s.Status.UpdatedReplicas = 1; s.Status.UpdateRevision = "web-2" },
			threshold: 100, why: "StatefulSet web: 1 of 3 replicas updated"},
		{name: "scaling down", mutate: func(s *appsv1.StatefulSet) { s.Status.Replicas = 5 }, threshold: 100, why: "StatefulSet web: 2 replicas pending termination"},
		{name: "roll not finished", mutate: func(s *appsv1.StatefulSet) { s.Status.UpdateRevision = "web-2" }, threshold: 100, why: "StatefulSet web: rolling out revision web-2"},
		{name: "one pod unavailable at 100%", mutate: func(s *appsv1.StatefulSet) { s.Status.AvailableReplicas = 2 }, threshold: 100, why: "StatefulSet web: 2 of 3 updated replicas available"},
		{name: "one pod unavailable at 50%", mutate: func(s *appsv1.StatefulSet) { s.Status.AvailableReplicas = 2 }, threshold: 50, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var m []func(*appsv1.StatefulSet)
			if tt.mutate != nil {
				m = append(m, tt.mutate)
			}
			ok, why := sts(m...).ready(tt.threshold)
			g.Expect(ok).To(Equal(tt.want))
			g.Expect(why).To(Equal(tt.why))
		})
	}
}

func TestStatefulSet_newPrimary(t *testing.T) {
	g := NewWithT(t)
	target := sts(func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		s.Labels = map[string]string{"app": "web", "kustomize.toolkit.fluxcd.io/name": "apps"}
	})
	obj, err := newPrimary(stsCanary(), target, "app", "web", nil)
	g.Expect(err).NotTo(HaveOccurred())
	p, ok := obj.(*appsv1.StatefulSet)
	g.Expect(ok).To(BeTrue())
	g.Expect(p.Name).To(Equal("web-primary"))
	g.Expect(p.Labels).To(Equal(map[string]string{"app": "web-primary"}))
	g.Expect(p.Spec.Replicas).To(Equal(ptr.To[int32](3)))
	g.Expect(p.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "web-primary", "tier": "db"}))
	g.Expect(p.Spec.Template.Labels).To(HaveKeyWithValue("app", "web-primary"))
	g.Expect(p.Spec.ServiceName).To(Equal("web-headless-primary"))
	g.Expect(p.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
	g.Expect(p.Spec.Ordinals).To(Equal(&appsv1.StatefulSetOrdinals{Start: 5}))
	g.Expect(p.Spec.MinReadySeconds).To(Equal(int32(7)))
	g.Expect(p.Spec.RevisionHistoryLimit).To(Equal(ptr.To[int32](4)))
	// The partition is dropped, maxUnavailable kept.
	g.Expect(p.Spec.UpdateStrategy.Type).To(Equal(appsv1.RollingUpdateStatefulSetStrategyType))
	g.Expect(p.Spec.UpdateStrategy.RollingUpdate.Partition).To(BeNil())
	g.Expect(p.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable).To(Equal(ptr.To(intstr.FromInt32(2))))
	g.Expect(target.Spec.UpdateStrategy.RollingUpdate.Partition).To(Equal(ptr.To[int32](0)), "the target is not changed")
	// Same claim template names (the claims differ by StatefulSet name), no status.
	g.Expect(p.Spec.VolumeClaimTemplates).To(HaveLen(1))
	g.Expect(p.Spec.VolumeClaimTemplates[0].Name).To(Equal("data"))
	g.Expect(p.Spec.VolumeClaimTemplates[0].Labels).To(Equal(map[string]string{"backup": "daily"}))
	g.Expect(p.Spec.VolumeClaimTemplates[0].Spec).To(Equal(target.Spec.VolumeClaimTemplates[0].Spec))
	g.Expect(p.Spec.VolumeClaimTemplates[0].Status).To(Equal(corev1.PersistentVolumeClaimStatus{}))
	// whenScaled follows the target, whenDeleted is always Retain.
	g.Expect(p.Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(&appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}))

	// A target at zero gets a primary of one; no serviceName, none for the primary.
	obj, err = newPrimary(stsCanary(), sts(func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = ptr.To[int32](0)
		s.Spec.ServiceName = ""
	}), "app", "web", nil)
	g.Expect(err).NotTo(HaveOccurred())
	p = obj.(*appsv1.StatefulSet)
	g.Expect(p.Spec.Replicas).To(Equal(ptr.To[int32](1)))
	g.Expect(p.Spec.ServiceName).To(BeEmpty())
	g.Expect(p.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled).To(Equal(appsv1.RetainPersistentVolumeClaimRetentionPolicyType))
}

func TestStatefulSet_check(t *testing.T) {
	primaryOf := func(target statefulSet) workload {
		obj, err := newPrimary(stsCanary(), target, "app", "web", nil)
		if err != nil {
			t.Fatal(err)
		}
		return statefulSet{obj.(*appsv1.StatefulSet)}
	}
	tests := []struct {
		name    string
		canary  func(*sluicev1beta1.Canary)
		target  func(*appsv1.StatefulSet)
		primary func(*appsv1.StatefulSet) // applied to the target before the primary is derived
		reason  string
		message string
	}{
		{name: "no primary yet"},
		{name: "primary in step", primary: func(*appsv1.StatefulSet) {}},
		{name: "template and replicas may differ", primary: func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].Image = "example.com/app:0.9"
			s.Spec.Replicas = ptr.To[int32](9)
		}},
		{name: "OnDelete", target: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}, reason: "UnsupportedUpdateStrategy", message: "StatefulSet web uses the OnDelete update strategy"},
		{name: "partition", target: func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](2) },
			reason: "UnsupportedUpdateStrategy", message: "has updateStrategy.rollingUpdate.partition 2"},
		{name: "serviceName is the apex", target: func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "web" },
			reason: "UnsupportedTarget", message: "spec.serviceName web is the Canary's service name"},
		{name: "serviceName is spec.service.name", canary: func(c *sluicev1beta1.Canary) { c.Spec.Service.Name = "web-headless" },
			reason: "UnsupportedTarget", message: "spec.serviceName web-headless is the Canary's service name"},
		{name: "claim template resized", primary: func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}, reason: "ImmutableFieldChanged", message: "StatefulSet web changed spec.volumeClaimTemplates, which a StatefulSet cannot change in place, so the primary web-primary cannot take it"},
		{name: "claim template added", primary: func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates = nil },
			reason: "ImmutableFieldChanged", message: "changed spec.volumeClaimTemplates"},
		{name: "several fields", primary: func(s *appsv1.StatefulSet) {
			s.Spec.ServiceName = "old"
			s.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
			s.Spec.Selector.MatchLabels["tier"] = "cache"
		}, reason: "ImmutableFieldChanged", message: "changed spec.selector, spec.serviceName, spec.podManagementPolicy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := stsCanary()
			if tt.canary != nil {
				tt.canary(c)
			}
			var tm []func(*appsv1.StatefulSet)
			if tt.target != nil {
				tm = append(tm, tt.target)
			}
			var primary workload
			if tt.primary != nil {
				// The primary as it was created from an earlier target.
				primary = primaryOf(sts(tt.primary))
			}
			err := checkStatefulSet(c, sts(tm...), primary, "app", "web")
			if tt.reason == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var st errStalled
			g.Expect(errors.As(err, &st)).To(BeTrue())
			g.Expect(st.Reason.Reason).To(Equal(tt.reason))
			g.Expect(st.Message).To(ContainSubstring(tt.message))
		})
	}
	// Other kinds are not concerned.
	NewWithT(t).Expect(checkStatefulSet(stsCanary(), deployment{&appsv1.Deployment{}}, nil, "app", "web")).To(Succeed())
}

func TestSelectorLabel(t *testing.T) {
	d := func(labels map[string]string) workload {
		return deployment{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}}}}
	}
	tests := []struct {
		name      string
		w         workload
		accepted  []string
		wantLabel string
		wantErr   string
	}{
		{name: "default order: app before name", w: d(map[string]string{"name": "n", "app": "a"}), accepted: DefaultSelectorLabels, wantLabel: "app"},
		{name: "default: app.kubernetes.io/name", w: d(map[string]string{"app.kubernetes.io/name": "a"}), accepted: DefaultSelectorLabels, wantLabel: "app.kubernetes.io/name"},
		{name: "custom label first", w: d(map[string]string{"app": "a", "team/component": "c"}), accepted: []string{"team/component", "app"}, wantLabel: "team/component"},
		{name: "empty value skipped", w: d(map[string]string{"app": "", "name": "n"}), accepted: DefaultSelectorLabels, wantLabel: "name"},
		{name: "none accepted", w: d(map[string]string{"app": "a"}), accepted: []string{"team/component"},
			wantErr: "the selector of Deployment web has none of the labels team/component in matchLabels"},
		{name: "StatefulSet named in the error", w: statefulSet{&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}}}, accepted: DefaultSelectorLabels,
			wantErr: "the selector of StatefulSet db has none of the labels app, name, app.kubernetes.io/name in matchLabels: add one so that the primary's pods can be told apart, or accept its label with the manager's --selector-labels (chart value selectorLabels)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			label, _, err := selectorLabel(tt.w, tt.accepted)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(label).To(Equal(tt.wantLabel))
		})
	}
	g := NewWithT(t)
	g.Expect((&CanaryReconciler{}).selectorLabels()).To(Equal(DefaultSelectorLabels))
	g.Expect((&CanaryReconciler{SelectorLabels: []string{"x"}}).selectorLabels()).To(Equal([]string{"x"}))
}

func TestStatefulSet_replicas(t *testing.T) {
	g := NewWithT(t)
	s := sts()
	g.Expect(replicasOf(s)).To(Equal(int32(3)))
	*replicasField(s) = ptr.To[int32](0)
	g.Expect(s.scaledToZero()).To(BeTrue())
	g.Expect(replicasOf(daemonSet{&appsv1.DaemonSet{}})).To(Equal(int32(1)))
	g.Expect(replicasField(daemonSet{&appsv1.DaemonSet{}})).To(BeNil())
	w, err := newWorkload("StatefulSet")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kindOfWorkload(w)).To(Equal("StatefulSet"))
	_, err = newWorkload("ReplicaSet")
	g.Expect(err).To(MatchError("target kind ReplicaSet is not supported: use a Deployment, a DaemonSet, a StatefulSet or a Knative Service (serving.knative.dev/v1, provider knative)"))
}

func TestSamePorts(t *testing.T) {
	g := NewWithT(t)
	p := []corev1.ServicePort{{Name: "peer", Port: 7000, TargetPort: intstr.FromInt32(7000), Protocol: corev1.ProtocolTCP}}
	g.Expect(samePorts(p, p)).To(BeTrue())
	other := []corev1.ServicePort{{Name: "peer", Port: 7001, TargetPort: intstr.FromInt32(7000), Protocol: corev1.ProtocolTCP}}
	g.Expect(samePorts(p, other)).To(BeFalse())
	g.Expect(samePorts(p, nil)).To(BeFalse())
	// The API server defaults the protocol the engine left out.
	g.Expect(samePorts(p, []corev1.ServicePort{{Name: "peer", Port: 7000, TargetPort: intstr.FromInt32(7000)}})).To(BeTrue())
}
