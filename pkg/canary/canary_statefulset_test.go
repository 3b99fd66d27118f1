package canary_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
)

// volumes makes n PersistentVolumes of the fixture's own storage class (its
// namespace's name), so that the claims of its StatefulSets bind (statically:
// the test control plane has no provisioner) and those of other tests do not
// take them. A PV whose claim is deleted is Released and never bound again.
func (f *fixture) volumes(n int) {
	f.t.Helper()
	for i := range n {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", f.ns, i)},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName:              f.ns,
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + f.ns}},
			},
		}
		f.g.Expect(env.Client.Create(f.ctx, pv)).To(Succeed())
		f.t.Cleanup(func() { _ = env.Client.Delete(f.ctx, pv) })
	}
}

// statefulSet creates a StatefulSet with one volume claim template "data"
// and its governing headless Service <name>-headless.
func (f *fixture) statefulSet(name, version string, replicas int32, mutate ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	f.t.Helper()
	labels := map[string]string{"app": name}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-headless", Namespace: f.ns},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels, PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{{Name: "peer", Port: 7000, TargetPort: intstr.FromInt32(7000)}}},
	}
	f.g.Expect(env.Client.Create(f.ctx, headless)).To(Succeed())
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			ServiceName:         headless.Name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/app:" + version,
					Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					StorageClassName: ptr.To(f.ns),
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
				},
			}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	f.g.Expect(env.Client.Create(f.ctx, s)).To(Succeed())
	return s
}

// stsCanary makes a Canary's target a StatefulSet.
func stsCanary(c *sluicev1beta1.Canary) {
	c.Spec.TargetRef.Kind = "StatefulSet"
	// Claims bind and pods start one controller pass after another on a
	// loaded machine.
	c.Spec.ProgressDeadlineSeconds = ptr.To[int32](180)
}

// claimUID reads a claim's UID, so that a test can tell a kept claim from a new one.
func (f *fixture) claimUID(name string) func() (types.UID, error) {
	return func() (types.UID, error) {
		pvc := &corev1.PersistentVolumeClaim{}
		err := f.get(pvc, name)
		return pvc.UID, err
	}
}

func (f *fixture) stsImage(name string) func() (string, error) {
	return func() (string, error) {
		s := &appsv1.StatefulSet{}
		err := f.get(s, name)
		if err != nil {
			return "", err
		}
		return s.Spec.Template.Spec.Containers[0].Image, nil
	}
}

func (f *fixture) stsReplicas(name string) func() (int32, error) {
	return func() (int32, error) {
		s := &appsv1.StatefulSet{}
		err := f.get(s, name)
		return ptr.Deref(s.Spec.Replicas, 1), err
	}
}

func (f *fixture) setStsImage(name, version string) {
	s := &appsv1.StatefulSet{}
	f.update(s, name, func() { s.Spec.Template.Spec.Containers[0].Image = "example.com/app:" + version })
}

// stalled reads a Canary's Stalled condition as "reason: message".
func (f *fixture) stalled(name string) func() string {
	return func() string {
		cond := f.condition(name, sluicev1beta1.StalledCondition)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			return ""
		}
		return cond.Reason + ": " + cond.Message
	}
}

// Given a StatefulSet target with a claim template, when its Canary
// initializes, then the primary is a StatefulSet of its own with its own
// claims and headless Service; when a new image is pushed, the weights
// shift, the primary takes the template in place and keeps its claims, and
// the canary goes back to zero keeping its claims (whenScaled: Retain).
func TestCanary_StatefulSetRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.volumes(6) // 2 for the primary, 2 for the canary, 2 spare
	f.statefulSet("db", "1.0", 2)
	f.canary("db", "db", stsCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderIstio
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, StepWeight: 25, MaxWeight: 50}
	})
	f.waitPhase("db", sluicev1beta1.CanaryPhaseInitialized)

	primary := &appsv1.StatefulSet{}
	f.g.Expect(f.get(primary, "db-primary")).To(Succeed())
	f.g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "db-primary"}))
	f.g.Expect(primary.Spec.ServiceName).To(Equal("db-headless-primary"))
	f.g.Expect(primary.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
	f.g.Expect(primary.Spec.VolumeClaimTemplates).To(HaveLen(1))
	f.g.Expect(primary.Spec.VolumeClaimTemplates[0].Name).To(Equal("data"))
	f.g.Expect(primary.Spec.VolumeClaimTemplates[0].Spec.StorageClassName).To(Equal(ptr.To(f.ns)))
	f.g.Expect(primary.Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(&appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}))
	// The primary's pods have names and claims of their own.
	headless := &corev1.Service{}
	f.g.Expect(f.get(headless, "db-headless-primary")).To(Succeed())
	f.g.Expect(headless.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))
	f.g.Expect(headless.Spec.Selector).To(Equal(map[string]string{"app": "db-primary"}))
	f.g.Expect(headless.Spec.PublishNotReadyAddresses).To(BeTrue())
	f.g.Expect(headless.Spec.Ports).To(HaveLen(1))
	f.g.Expect(headless.Spec.Ports[0].Port).To(Equal(int32(7000)))
	f.g.Expect(metav1.IsControlledBy(headless, f.canaryObj("db"))).To(BeTrue())
	primaryClaim, err := f.claimUID("data-db-primary-0")()
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.claimUID("data-db-primary-1")()).NotTo(BeEmpty())
	// The apex Service routes to the primary as for a Deployment.
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "db")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "db-primary"}))
	f.g.Eventually(f.stsReplicas("db")).Should(Equal(int32(0)))

	f.setStsImage("db", "2.0")
	f.waitPhase("db", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.history("db")()).To(Equal("25,50,0"))
	f.g.Expect(f.stsImage("db-primary")()).To(Equal("example.com/app:2.0"))
	// The primary was updated in place: same object, same claims, rolled.
	updated := &appsv1.StatefulSet{}
	f.g.Expect(f.get(updated, "db-primary")).To(Succeed())
	f.g.Expect(updated.UID).To(Equal(primary.UID))
	f.g.Expect(updated.Status.UpdateRevision).To(Equal(updated.Status.CurrentRevision))
	f.g.Expect(updated.Status.UpdateRevision).NotTo(Equal(primary.Status.UpdateRevision))
	f.g.Expect(f.claimUID("data-db-primary-0")()).To(Equal(primaryClaim))
	// The canary is back at zero; Retain keeps its claims for the next release.
	f.g.Eventually(f.stsReplicas("db")).Should(Equal(int32(0)))
	f.g.Eventually(func() (int32, error) {
		s := &appsv1.StatefulSet{}
		err := f.get(s, "db")
		return s.Status.Replicas, err
	}).Should(BeZero())
	f.g.Expect(f.claimUID("data-db-0")()).NotTo(BeEmpty())
	f.g.Expect(f.claimUID("data-db-1")()).NotTo(BeEmpty())
}

// Given a StatefulSet target whose claims are deleted on scale-down, when a
// revision fails its checks, then the primary keeps its template and
// claims, and the canary goes back to zero and its claims are deleted.
func TestCanary_StatefulSetRollback(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.volumes(4) // the primary's, the canary's at initialization, the canary's for the release, a spare
	f.hooks.set("/load", http.StatusInternalServerError)
	f.statefulSet("cache", "1.0", 1, func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
	})
	f.canary("cache", "cache", stsCanary, func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 5
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{hook("load", "", f.hooks.url("/load"))}
	})
	f.waitPhase("cache", sluicev1beta1.CanaryPhaseInitialized)
	primary := &appsv1.StatefulSet{}
	f.g.Expect(f.get(primary, "cache-primary")).To(Succeed())
	// The primary scales down as the target does but never deletes its
	// claims with itself.
	f.g.Expect(primary.Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(&appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}))
	primaryClaim, err := f.claimUID("data-cache-primary-0")()
	f.g.Expect(err).NotTo(HaveOccurred())
	gone := func() bool { return apierrors.IsNotFound(f.get(&corev1.PersistentVolumeClaim{}, "data-cache-0")) }
	f.g.Eventually(gone).Should(BeTrue(), "the canary's claim goes when it is scaled to zero after initialization")

	f.setStsImage("cache", "2.0")
	f.waitPhase("cache", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Eventually(f.claimUID("data-cache-0")).ShouldNot(BeEmpty(), "the canary gets a new claim")
	c := f.waitPhase("cache", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(c.Status.FailedChecks).To(Equal(int32(2)))
	f.g.Expect(f.stsImage("cache-primary")()).To(Equal("example.com/app:1.0"))
	f.g.Expect(f.claimUID("data-cache-primary-0")()).To(Equal(primaryClaim))
	after := &appsv1.StatefulSet{}
	f.g.Expect(f.get(after, "cache-primary")).To(Succeed())
	f.g.Expect(after.Generation).To(Equal(primary.Generation), "the rollback does not touch the primary")
	f.g.Eventually(f.stsReplicas("cache")).Should(Equal(int32(0)))
	f.g.Eventually(gone).Should(BeTrue(), "the canary's claim goes with whenScaled: Delete")
}

// Given an initialized StatefulSet Canary, when it is deleted, then the
// target serves again on its own claims, and the primary goes while its
// claims stay (whenDeleted: Retain, whatever the target's), and its
// headless Service goes with it.
func TestCanary_StatefulSetDeletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.volumes(3)
	// Even a target that deletes its claims with itself does not take the
	// primary's data along: the primary always retains.
	f.statefulSet("queue", "1.0", 1, func(s *appsv1.StatefulSet) {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
	})
	c := f.canary("queue", "queue", stsCanary)
	f.waitPhase("queue", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Eventually(f.stsReplicas("queue")).Should(Equal(int32(0)))
	primaryClaim, err := f.claimUID("data-queue-primary-0")()
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(env.Client.Delete(f.ctx, c)).To(Succeed())

	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&sluicev1beta1.Canary{}, "queue")) }).Should(BeTrue())
	target := &appsv1.StatefulSet{}
	f.g.Expect(f.get(target, "queue")).To(Succeed())
	f.g.Expect(*target.Spec.Replicas).To(Equal(int32(1)))
	f.g.Expect(target.Status.AvailableReplicas).To(Equal(int32(1)))
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "queue")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"app": "queue"}))
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&appsv1.StatefulSet{}, "queue-primary")) }).Should(BeTrue())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&corev1.Service{}, "queue-headless-primary")) }).Should(BeTrue())
	f.g.Expect(f.get(&corev1.Service{}, "queue-headless")).To(Succeed(), "the user's headless Service stays")
	f.g.Consistently(f.claimUID("data-queue-primary-0"), 2*time.Second, 200*time.Millisecond).Should(Equal(primaryClaim))
}

// Given a StatefulSet target recreated with another claim template, the
// primary cannot take it: the Canary is Stalled and says what to do.
func TestCanary_StatefulSetImmutableField(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.volumes(3)
	s := f.statefulSet("kv", "1.0", 1)
	f.canary("kv", "kv", stsCanary)
	f.waitPhase("kv", sluicev1beta1.CanaryPhaseInitialized)
	// A StatefulSet's claim templates change only by recreating it, its
	// pods orphaned: what a user does to resize a volume.
	f.g.Expect(env.Client.Delete(f.ctx, s, client.PropagationPolicy(metav1.DeletePropagationOrphan))).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(f.get(&appsv1.StatefulSet{}, "kv")) }).Should(BeTrue())
	f.g.Expect(env.Client.Delete(f.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kv-headless", Namespace: f.ns}})).To(Succeed())
	f.statefulSet("kv", "1.0", 0, func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Mi")
	})
	f.g.Eventually(f.stalled("kv")).Should(And(
		HavePrefix("ImmutableFieldChanged: StatefulSet kv changed spec.volumeClaimTemplates"),
		ContainSubstring("kubectl delete statefulset kv-primary --cascade=orphan")))
	f.g.Expect(f.stsImage("kv-primary")()).To(Equal("example.com/app:1.0"))

	// The way out the message gives: the primary is recreated with the new
	// template, adopts the orphaned pod and keeps its claim.
	primary := &appsv1.StatefulSet{}
	f.g.Expect(f.get(primary, "kv-primary")).To(Succeed())
	claim, err := f.claimUID("data-kv-primary-0")()
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(env.Client.Delete(f.ctx, primary, client.PropagationPolicy(metav1.DeletePropagationOrphan))).To(Succeed())
	f.g.Eventually(f.stalled("kv")).Should(BeEmpty())
	f.g.Eventually(func() (string, error) {
		p := &appsv1.StatefulSet{}
		if err := f.get(p, "kv-primary"); err != nil {
			return "", err
		}
		if p.UID == primary.UID {
			return "", fmt.Errorf("not recreated yet")
		}
		q := p.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
		return q.String(), nil
	}).Should(Equal("2Mi"))
	f.waitPhase("kv", sluicev1beta1.CanaryPhaseInitialized)
	f.g.Expect(f.claimUID("data-kv-primary-0")()).To(Equal(claim))
}

// Given target StatefulSets that cannot release, the Canary is Stalled
// with a reason and a message saying why.
func TestCanary_StatefulSetStalled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.statefulSet("ondelete", "1.0", 1, func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	})
	f.canary("ondelete", "ondelete", stsCanary)
	f.statefulSet("apex", "1.0", 1, func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "apex-svc" })
	f.canary("apex", "apex", stsCanary, func(c *sluicev1beta1.Canary) { c.Spec.Service.Name = "apex-svc" })
	f.g.Eventually(f.stalled("ondelete")).Should(HavePrefix("UnsupportedUpdateStrategy: StatefulSet ondelete uses the OnDelete update strategy"))
	f.g.Eventually(f.stalled("apex")).Should(HavePrefix("UnsupportedTarget: StatefulSet apex: spec.serviceName apex-svc is the Canary's service name"))
	for _, name := range []string{"ondelete-primary", "apex-primary"} {
		f.g.Expect(apierrors.IsNotFound(f.get(&appsv1.StatefulSet{}, name))).To(BeTrue(), name+" must not be created")
	}
}

func withSelectorLabels(labels ...string) fixtureOption {
	return func(r *canary.CanaryReconciler) { r.SelectorLabels = labels }
}

// relabel makes a Deployment select its pods by one label only.
func relabel(key, value string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		l := map[string]string{key: value}
		d.Spec.Selector.MatchLabels = l
		d.Spec.Template.Labels = l
	}
}

// Given --selector-labels with a label of the team's own, a target
// selected by it releases with "-primary" on that label, and a target
// selected by a default label no longer accepted is Stalled with the
// accepted labels and the flag in the message.
func TestCanary_SelectorLabels(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withSelectorLabels("example.com/component", "app"))
	f.deployment("custom", "1.0", 1, relabel("example.com/component", "custom"))
	f.canary("custom", "custom")
	f.deployment("named", "1.0", 1, relabel("name", "named"))
	f.canary("named", "named")

	f.waitPhase("custom", sluicev1beta1.CanaryPhaseInitialized)
	primary := &appsv1.Deployment{}
	f.g.Expect(f.get(primary, "custom-primary")).To(Succeed())
	f.g.Expect(primary.Spec.Selector.MatchLabels).To(Equal(map[string]string{"example.com/component": "custom-primary"}))
	apex := &corev1.Service{}
	f.g.Expect(f.get(apex, "custom")).To(Succeed())
	f.g.Expect(apex.Spec.Selector).To(Equal(map[string]string{"example.com/component": "custom-primary"}))
	f.setImage("custom", "2.0")
	f.waitPhase("custom", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Expect(f.image("custom-primary")()).To(Equal("example.com/app:2.0"))

	f.g.Eventually(f.stalled("named")).Should(Equal("UnsupportedSelector: the selector of Deployment named has none of the labels example.com/component, app in matchLabels: " +
		"add one so that the primary's pods can be told apart, or accept its label with the manager's --selector-labels (chart value selectorLabels)"))
	f.g.Expect(strings.Contains(f.stalled("named")(), "--selector-labels")).To(BeTrue())
}

// canaryObj reads a Canary.
func (f *fixture) canaryObj(name string) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, name)).To(Succeed())
	return c
}
