package canary

import (
	"context"
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// CanaryReconciler drives the releases of Canaries.
type CanaryReconciler struct {
	// Client reads from the manager's caches and writes to the API server.
	Client client.Client
	// APIReader reads ConfigMap and Secret data, which are cached as metadata only.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Routers   *router.Registry
	Webhooks  WebhookCaller
	Metrics   MetricChecker
	Clock     clock.PassiveClock
	// EventHooks delivers every event to the Canary's event webhooks, in the background.
	EventHooks EventSink
	// Announcer sends the announced events to the Canary's alerts, in the background.
	Announcer Announcer

	// DefaultProvider is used by Canaries that do not set spec.provider.
	DefaultProvider string
	// MaxConcurrentRollouts limits the releases in progress at once; 0 is no limit.
	MaxConcurrentRollouts int
	// MetricConcurrency bounds the metric queries of one analysis step run
	// at once; DefaultMetricConcurrency when 0.
	MetricConcurrency int
	// MaxConcurrentReconciles is the number of workers.
	MaxConcurrentReconciles int
	// SelectorLabels are the pod labels, in order of preference, that
	// identify a target's pods (--selector-labels); DefaultSelectorLabels when empty.
	SelectorLabels []string
	// DisableConfigTracking turns off the tracking of ConfigMaps and Secrets.
	DisableConfigTracking bool
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool

	slots *slots
}

var _ reconcile.Reconciler = (*CanaryReconciler)(nil)

// +kubebuilder:rbac:groups=sluice.dev,resources=canaries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=sluice.dev,resources=metrictemplates;alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch

// Reconcile observes a Canary, decides its next step, applies it and
// records the outcome in its status.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	c := &sluicev1beta1.Canary{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			forgetCanaryMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(c, sluicev1beta1.CanaryFinalizer) {
		forgetCanaryMetrics(c.Namespace, c.Name)
		return ctrl.Result{}, nil
	}
	if c.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(c, sluicev1beta1.CanaryFinalizer) {
		// The finalizer makes deletion restore the target first.
		patch := client.MergeFrom(c.DeepCopy())
		controllerutil.AddFinalizer(c, sluicev1beta1.CanaryFinalizer)
		return ctrl.Result{}, r.Client.Patch(ctx, c, patch)
	}

	defer func(phase sluicev1beta1.CanaryPhase, start time.Time) {
		observeAnalysisStep(c, phase, r.Clock.Since(start))
	}(c.Status.Phase, r.Clock.Now())
	s, err := r.observe(ctx, c)
	if err != nil {
		return r.observeFailed(ctx, c, err)
	}

	d := Decide(s.obs)
	if d.NeedsSlot {
		if d, err = r.countSlots(ctx, s, d); err != nil {
			return ctrl.Result{}, err
		}
	}
	if changes(c, d) {
		// Act only on the latest Canary: a reconcile woken by another object
		// can read a Canary whose last status patch the cache has not seen.
		if fresh, err := r.isFresh(ctx, c); err != nil || !fresh {
			return ctrl.Result{RequeueAfter: staleRetry}, err
		}
	}
	if d.NeedChecks != nil {
		s.obs.Checks = r.runChecks(ctx, s, d.NeedChecks)
		d = Decide(s.obs)
	}
	releaseSlot, d, err := r.reserveSlot(ctx, s, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	started := false
	defer func() { releaseSlot(started) }()
	actionEvents, err := r.apply(ctx, s, d)
	if err != nil {
		return r.actionFailed(ctx, c, s.obs.Now, err)
	}
	events := append(toAnnounce(c, &d), actionEvents...)
	prev := c.Status // patchStatus replaces c.Status, never changes it in place
	if err := r.patchStatus(ctx, c, d.Status); err != nil {
		if apierrors.IsConflict(err) {
			// Another writer changed the Canary since it was read: decide
			// again on the new one. Nothing was announced.
			log.V(1).Info("Status patch conflicted, deciding again", "error", err.Error())
			return ctrl.Result{RequeueAfter: staleRetry}, nil
		}
		return ctrl.Result{}, err
	}
	started = holdsSlot(d.Status.Phase)
	// The transition is committed: announce it, once.
	events, steps := foldSteps(events, newSteps(&prev, &c.Status))
	r.announceAll(c, events, s.obs)
	r.exportSteps(c, steps)
	recordMetrics(&prev, c, s.obs.Provider)
	observeDelivery(&prev, c)
	if d.RemoveFinalizer {
		patch := client.MergeFrom(c.DeepCopy())
		controllerutil.RemoveFinalizer(c, sluicev1beta1.CanaryFinalizer)
		if err := r.Client.Patch(ctx, c, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to remove the finalizer: %w", err)
		}
		forgetCanaryMetrics(c.Namespace, c.Name)
	}
	if d.Status.Phase != prev.Phase {
		log.Info("Phase changed", "from", prev.Phase, "to", d.Status.Phase, "revision", d.Status.Revision, "weight", d.Status.CanaryWeight)
	}
	return ctrl.Result{RequeueAfter: d.RequeueAfter}, nil
}

// countSlots tells Decide whether a rollout slot is free, for a decision
// that depends on it, and decides again when none is.
func (r *CanaryReconciler) countSlots(ctx context.Context, s *scope, d Decision) (Decision, error) {
	free, err := r.slots.free(ctx, r.Client, s.canary, s.obs.Now)
	if err != nil {
		return d, fmt.Errorf("failed to count running rollouts: %w", err)
	}
	if free {
		return d, nil
	}
	s.obs.SlotFree = false
	return Decide(s.obs), nil
}

// reserveSlot takes a rollout slot for a decision that starts a release.
// When the last slot went to another Canary since observe counted them, the
// release waits instead: Decide runs again knowing no slot is free. The
// returned release gives back a slot the reconcile did not use.
func (r *CanaryReconciler) reserveSlot(ctx context.Context, s *scope, d Decision) (func(started bool), Decision, error) {
	none := func(bool) {}
	if holdsSlot(s.canary.Status.Phase) || !holdsSlot(d.Status.Phase) {
		return none, d, nil
	}
	ok, release, err := r.slots.reserve(ctx, r.Client, s.canary, s.obs.Now)
	if err != nil {
		return nil, d, fmt.Errorf("failed to count running rollouts: %w", err)
	}
	if ok {
		return release, d, nil
	}
	s.obs.SlotFree = false
	return none, Decide(s.obs), nil
}

// staleRetry is how soon a reconcile that read a stale Canary tries again.
const staleRetry = 200 * time.Millisecond

// changes tells whether a decision does more than ensure objects exist.
func changes(c *sluicev1beta1.Canary, d Decision) bool {
	if d.NeedChecks != nil || d.RemoveFinalizer {
		return true
	}
	for _, a := range d.Actions {
		// EnsureObjects and PromotePrimary (repeated while the primary
		// rolls out) converge to the same objects whatever the reconcile
		// that asks: they need no freshness check.
		if a.Kind != EnsureObjects && a.Kind != PromotePrimary && a.Kind != EnsureBaseline {
			return true
		}
	}
	return c.Status.Phase != d.Status.Phase || c.Status.CanaryWeight != d.Status.CanaryWeight
}

// isFresh compares the cached Canary's resourceVersion with the API server's.
func (r *CanaryReconciler) isFresh(ctx context.Context, c *sluicev1beta1.Canary) (bool, error) {
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(sluicev1beta1.GroupVersion.WithKind("Canary"))
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), live); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return live.ResourceVersion == c.ResourceVersion, nil
}

// patchStatus writes the new status in one patch, when it changed. The patch
// carries the resourceVersion read, so a status computed from a stale read
// is refused rather than written over a newer one.
func (r *CanaryReconciler) patchStatus(ctx context.Context, c *sluicev1beta1.Canary, st sluicev1beta1.CanaryStatus) error {
	if reflect.DeepEqual(c.Status, st) {
		return nil
	}
	patch := client.MergeFromWithOptions(c.DeepCopy(), client.MergeFromWithOptimisticLock{})
	c.Status = st
	if err := r.Client.Status().Patch(ctx, c, patch); err != nil {
		return fmt.Errorf("failed to patch the status: %w", err)
	}
	return nil
}

// event records a Kubernetes event about a Canary.
func (r *CanaryReconciler) event(c *sluicev1beta1.Canary, e Event) {
	if r.Recorder == nil {
		return
	}
	t := corev1.EventTypeNormal
	if e.Warning {
		t = corev1.EventTypeWarning
	}
	msg := e.Message
	if e.Detail != "" {
		msg += " | " + e.Detail
	}
	r.Recorder.Eventf(c, nil, t, e.Reason, "Reconcile", "%s", truncate(msg, 1024))
}
