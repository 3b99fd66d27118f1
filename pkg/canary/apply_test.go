package canary_test

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// engineOperations lists the operations of the managedFields entries of
// the engine's field manager on obj.
func engineOperations(obj client.Object) []metav1.ManagedFieldsOperationType {
	var out []metav1.ManagedFieldsOperationType
	for _, e := range obj.GetManagedFields() {
		if e.Manager == sluicev1beta1.FieldManagerEngine {
			out = append(out, e.Operation)
		}
	}
	return out
}

// TestCanary_EngineWritesWithServerSideApply: the objects the engine owns
// are written with server-side apply as sluice-engine, at creation and at
// promotion, so the API server records them as the engine's applied
// configuration and a field it stops applying goes away.
func TestCanary_EngineWritesWithServerSideApply(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployment("ssa", "1.0", 2, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "OLD", Value: "1"}}
	})
	f.canary("ssa", "ssa")
	f.waitPhase("ssa", sluicev1beta1.CanaryPhaseInitialized)

	primary := &appsv1.Deployment{}
	f.g.Expect(f.get(primary, "ssa-primary")).To(Succeed())
	f.g.Expect(engineOperations(primary)).To(Equal([]metav1.ManagedFieldsOperationType{metav1.ManagedFieldsOperationApply}))
	f.g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	svc := &corev1.Service{}
	f.g.Expect(f.get(svc, "ssa-primary")).To(Succeed())
	f.g.Expect(engineOperations(svc)).To(Equal([]metav1.ManagedFieldsOperationType{metav1.ManagedFieldsOperationApply}))
	f.g.Expect(svc.OwnerReferences).To(HaveLen(1))

	// Another controller owns a field of the primary. The manager's cache
	// keeps only Sluice's managedFields entries (CacheTransform), so its
	// entry must survive the engine rewriting the list below.
	f.update(primary, "ssa-primary", func() {
		metav1.SetMetaDataAnnotation(&primary.ObjectMeta, "example.com/team", "payments")
	}, client.FieldOwner("someone-else"))

	// An engine from before server-side apply wrote the primary with merge
	// patches (operation Update), here adding an env var the target no
	// longer has: promotion still removes it.
	f.update(primary, "ssa-primary", func() {
		primary.Spec.Template.Spec.Containers[0].Env = append(primary.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "STALE", Value: "1"})
	}, client.FieldOwner(sluicev1beta1.FieldManagerEngine))
	target := &appsv1.Deployment{}
	f.update(target, "ssa", func() {
		target.Spec.Template.Spec.Containers[0].Image = "example.com/app:2.0"
		target.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NEW", Value: "1"}}
	})
	f.waitPhase("ssa", sluicev1beta1.CanaryPhaseSucceeded)

	f.g.Expect(f.get(primary, "ssa-primary")).To(Succeed())
	f.g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:2.0"))
	f.g.Expect(primary.Spec.Template.Spec.Containers[0].Env).To(Equal([]corev1.EnvVar{{Name: "NEW", Value: "1"}}))
	f.g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	f.g.Expect(engineOperations(primary)).To(Equal([]metav1.ManagedFieldsOperationType{metav1.ManagedFieldsOperationApply}))
	f.g.Expect(primary.OwnerReferences).To(HaveLen(1))
	f.g.Expect(primary.Annotations).To(HaveKeyWithValue("example.com/team", "payments"))
	f.g.Expect(managers(primary)).To(ContainElement("someone-else"),
		"the other controller's managedFields entry was lost when the engine moved its fields to server-side apply")
}

// managers lists the field managers of obj's managedFields entries.
func managers(obj client.Object) []string {
	var out []string
	for _, e := range obj.GetManagedFields() {
		out = append(out, e.Manager)
	}
	return out
}
