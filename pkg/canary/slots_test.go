package canary

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
)

// blockingHooks holds every webhook call until release is closed.
type blockingHooks struct {
	entered chan string
	release chan struct{}
}

func (h *blockingHooks) Call(ctx context.Context, c *sluicev1beta1.Canary, _ sluicev1beta1.CanaryWebhook, _ sluicev1beta1.CanaryPhase) error {
	h.entered <- c.Name
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slotTarget is a ready Deployment for a Canary of the same name.
func slotTarget(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":2.0"}}},
			},
		},
		Status: appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1},
	}
}

// slotCanary is a Canary that succeeded on revision promoted; with gated it
// has a confirm-rollout gate.
func slotCanary(name, promoted string, gated bool) *sluicev1beta1.Canary {
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Finalizers: []string{sluicev1beta1.CanaryFinalizer}},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderKubernetes,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, Iterations: 1},
		},
		Status: sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded, LastAppliedSpec: promoted, LastPromotedSpec: promoted},
	}
	if gated {
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.WebhookConfirmRollout, URL: "http://gate.test/"}}
	}
	return c
}

// newSlotReconciler is a reconciler on a fake client holding objs, limited
// to one rollout at a time.
func newSlotReconciler(g Gomega, hooks WebhookCaller, objs ...client.Object) *CanaryReconciler {
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(sluicev1beta1.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&sluicev1beta1.Canary{}, &appsv1.Deployment{}).Build()
	routers := router.NewRegistry()
	kubernetesrouter.Register(routers)
	return &CanaryReconciler{
		Client: c, APIReader: c, Scheme: scheme, Routers: routers, Webhooks: hooks,
		Clock: clock.RealClock{}, DefaultProvider: sluicev1beta1.ProviderKubernetes,
		MaxConcurrentRollouts: 1, slots: newSlots(1),
	}
}

func request(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "default", Name: name}}
}

// Given a Canary whose confirm-rollout gate takes its time, while that
// reconcile waits on the gate another Canary's reconcile and the slot
// bookkeeping go through: nothing slow runs under the slots' lock. Once the
// gate opens the release starts and holds the only slot.
func TestSlots_NoSlowCallUnderTheLock(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idleTarget := slotTarget("idle")
	hooks := &blockingHooks{entered: make(chan string, 1), release: make(chan struct{})}
	r := newSlotReconciler(g, hooks,
		slotTarget("gated"), slotCanary("gated", "an-older-revision", true),
		idleTarget, slotCanary("idle", templateHash(&idleTarget.Spec.Template), false),
		slotTarget("next"), slotCanary("next", "an-older-revision", false),
	)

	doneGated := make(chan error, 1)
	go func() {
		_, err := r.Reconcile(ctx, request("gated"))
		doneGated <- err
	}()
	g.Eventually(hooks.entered, 30*time.Second).Should(Receive(Equal("gated")))

	// The gate is still being asked (released below): these must not wait for it.
	doneIdle := make(chan error, 1)
	go func() {
		_, err := r.Reconcile(ctx, request("idle"))
		doneIdle <- err
	}()
	g.Eventually(doneIdle, 30*time.Second).Should(Receive(BeNil()), "an idle Canary's reconcile waited for another Canary's webhook")
	next := &sluicev1beta1.Canary{}
	g.Expect(r.Client.Get(ctx, request("next").NamespacedName, next)).To(Succeed())
	counted := make(chan error, 1)
	go func() {
		_, err := r.slots.free(ctx, r.Client, next, time.Now())
		counted <- err
	}()
	g.Eventually(counted, 30*time.Second).Should(Receive(BeNil()), "counting the slots waited for another Canary's webhook")

	close(hooks.release)
	g.Eventually(doneGated, 30*time.Second).Should(Receive(BeNil()))
	gated := &sluicev1beta1.Canary{}
	g.Expect(r.Client.Get(ctx, request("gated").NamespacedName, gated)).To(Succeed())
	g.Expect(gated.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))

	// The only slot is taken: the next new revision waits for it.
	_, err := r.Reconcile(ctx, request("next"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Client.Get(ctx, request("next").NamespacedName, next)).To(Succeed())
	g.Expect(next.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseWaiting))
}

// Given one free slot, two Canaries that both saw it free cannot both take
// it: the second reservation is refused until the first is given back.
func TestSlots_ReserveTakesTheLastSlotOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a, b := slotCanary("a", "old", false), slotCanary("b", "old", false)
	r := newSlotReconciler(g, nil, a, b)
	now := time.Now()
	for _, c := range []*sluicev1beta1.Canary{a, b} {
		free, err := r.slots.free(ctx, r.Client, c, now)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(free).To(BeTrue(), c.Name)
	}
	ok, releaseA, err := r.slots.reserve(ctx, r.Client, a, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	ok, _, err = r.slots.reserve(ctx, r.Client, b, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse(), "the last slot was taken twice")

	releaseA(false) // a's status patch failed: the slot is free again
	ok, releaseB, err := r.slots.reserve(ctx, r.Client, b, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	releaseB(true) // b started: it keeps the slot until the cache shows it
	free, err := r.slots.free(ctx, r.Client, a, now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(free).To(BeFalse())
}

// storeInformers is a cache whose Canary informer holds the given store.
type storeInformers struct {
	inf toolscache.SharedIndexInformer
}

func (s storeInformers) GetInformer(context.Context, client.Object, ...ctrlcache.InformerGetOption) (ctrlcache.Informer, error) {
	return s.inf, nil
}

// failingReader fails every read: slots must not list through the client
// when the cache's store is at hand.
type failingReader struct{ client.Reader }

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("listed through the client")
}

// TestSlots_ListReadsTheInformerStore: with the manager's cache, the
// Canaries are read from the informer's store as the cached objects
// themselves, not copied into a CanaryList on every reconcile, and counted
// as from a list: two releases running fill a limit of two.
func TestSlots_ListReadsTheInformerStore(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &sluicev1beta1.Canary{}, 0, toolscache.Indexers{})
	var stored []*sluicev1beta1.Canary
	for i, phase := range []sluicev1beta1.CanaryPhase{
		sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseSucceeded,
	} {
		c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint("c", i)}, Status: sluicev1beta1.CanaryStatus{Phase: phase}}
		g.Expect(inf.GetStore().Add(c)).To(Succeed())
		stored = append(stored, c)
	}
	s := newSlots(2)
	s.informers = storeInformers{inf: inf}

	list, err := s.list(ctx, failingReader{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list).To(ConsistOf(stored[0], stored[1], stored[2])) // the same pointers
	for _, c := range list {
		g.Expect(stored).To(ContainElement(BeIdenticalTo(c)), "a copy of the cached Canary")
	}

	free, err := s.free(ctx, failingReader{}, stored[2], time.Now())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(free).To(BeFalse(), "two releases run and the limit is two")
}
