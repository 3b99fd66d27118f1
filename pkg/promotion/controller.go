package promotion

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/imagescan"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// +kubebuilder:rbac:groups=sluice.dev,resources=pipelines,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=pipelines/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Defaults of a Reconciler.
const (
	// DefaultPollInterval is how often a Pipeline with a stage on its way
	// is decided again without an event: a Canary on another cluster or a
	// pull request is not watched.
	DefaultPollInterval = 30 * time.Second
	// DefaultScanInterval is a source's scan interval when spec.sources[].interval is unset.
	DefaultScanInterval = 5 * time.Minute
)

// Reconciler joins the parts of a promotion: it observes (scans the
// sources whose interval is due, reads each stage's Canary), decides with
// Decide, writes to Git what the decision asks for, records the outcomes in
// the decided status, patches the status once and then emits the events.
type Reconciler struct {
	Client client.Client
	// APIReader reads Secrets and GitSyncs uncached: the manager does not
	// watch every Secret of the cluster.
	APIReader client.Reader
	// Scanner finds the latest image of a source.
	Scanner imagescan.Scanner
	// Writer commits to Git with the manager's identity and signing.
	Writer *gitwrite.Writer
	// Recorder records events on Pipelines.
	Recorder events.EventRecorder
	// Metrics checks a Canary's metrics during a soak with soakChecks:
	// Metrics; nil: a Checker with no default Prometheus address.
	Metrics MetricChecker
	// DefaultProvider is the traffic provider of Canaries without spec.provider (--provider).
	DefaultProvider string
	// Builtins are the builtin metrics' queries per traffic provider (the
	// router registry), for soak checks of builtin metrics.
	Builtins metrics.BuiltinQueries
	// Webhooks calls the stages' webhook gates; nil: a client signing with
	// the Secrets of spec.stages[].webhook.secretRef, read by APIReader.
	Webhooks *webhooks.Client
	// Notifier sends the events of spec.alerts (see alerts.go); nil sends none.
	Notifier Notifier
	// InsecureLoopbackRegistries scans loopback registries (localhost,
	// 127.0.0.0/8, ::1) over plain HTTP, as in tests or with a registry
	// beside the manager; other hosts are always scanned over HTTPS.
	InsecureLoopbackRegistries bool
	// PollInterval: see DefaultPollInterval; 0 is the default.
	PollInterval time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// MaxConcurrentReconciles; 0 is 1.
	MaxConcurrentReconciles int
	// SkipNameValidation lets tests run several managers in one process.
	SkipNameValidation bool

	// scans keeps the last scan of each source between its intervals. It is
	// a rate limit, not state: after a restart every source is scanned
	// again, and the same images make the same bundle.
	scansMu sync.Mutex
	scans   map[string]scanEntry
	// remotes are the clients of the clusters of canaryRef.kubeConfig.
	remotes remoteClients
	// indexed is the manager's cache, which holds the Canary index.
	indexed client.Reader
	// alerted is this process's last write of each status.alerts.
	alerted alertMemory
	// hooksOnce defaults Webhooks (see webhookClient).
	hooksOnce sync.Once
}

// SetupWithManager registers the reconciler: Pipelines, and the Canaries
// their stages name (a release's verdict moves a stage on).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("sluice-promotion")
	}
	if r.Scanner == nil {
		r.Scanner = imagescan.NewRegistryScanner()
	}
	if r.Metrics == nil {
		r.Metrics = &metrics.Checker{Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(), Builtins: r.Builtins}
	}
	if r.Writer == nil {
		return fmt.Errorf("the promotion reconciler needs a Git writer (with the commit identity)")
	}
	// Canaries change often while they release: the Pipelines that name
	// one are found through an index, not by reading every Pipeline.
	r.indexed = mgr.GetCache()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &sluicev1beta1.Pipeline{}, canaryIndex, canariesOf); err != nil {
		return fmt.Errorf("failed to index Pipelines by Canary: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&sluicev1beta1.Pipeline{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&sluicev1beta1.Canary{}, handler.EnqueueRequestsFromMapFunc(r.pipelinesOfCanary)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles), SkipNameValidation: &r.SkipNameValidation}).
		Named("pipeline").
		Complete(r)
}

// canaryIndex indexes Pipelines by the "<namespace>/<name>" of the local
// Canaries their stages name.
const canaryIndex = "sluice.dev/pipeline-canaries"

func canariesOf(o client.Object) []string {
	p, ok := o.(*sluicev1beta1.Pipeline)
	if !ok {
		return nil
	}
	var keys []string
	for _, s := range p.Spec.Stages {
		if s.CanaryRef.KubeConfig != nil {
			continue // another cluster's Canaries are polled, not watched
		}
		ns := s.CanaryRef.Namespace
		if ns == "" {
			ns = p.Namespace
		}
		if k := ns + "/" + s.CanaryRef.Name; !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// pipelinesOfCanary maps a Canary to the Pipelines whose local stages name it.
func (r *Reconciler) pipelinesOfCanary(ctx context.Context, o client.Object) []reconcile.Request {
	var list sluicev1beta1.PipelineList
	if err := r.indexed.List(ctx, &list, client.MatchingFields{canaryIndex: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list the Pipelines of a Canary")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	}
	return reqs
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile observes, decides, acts, records, patches once, then announces.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	p := &sluicev1beta1.Pipeline{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get Pipeline %s: %w", req.NamespacedName, err)
	}
	now := r.now()
	obs, nextScan, err := r.observe(ctx, p, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.webhookGates(ctx, p, &obs, now)
	d := Decide(p, obs, now)
	failed := r.act(ctx, p, &d)
	alerts := r.alertDeliveries(p, &d, now)

	if !equality.Semantic.DeepEqual(&p.Status, &d.Status) {
		patch := client.MergeFrom(p.DeepCopy())
		p.Status = d.Status
		if err := r.Client.Status().Patch(ctx, p, patch); err != nil {
			// Nothing is announced: the next decision, on the status as it
			// is, asks for the same writes, which find their commits.
			return ctrl.Result{}, fmt.Errorf("failed to patch the status of Pipeline %s: %w", req.NamespacedName, err)
		}
	}
	r.notify(p, alerts) // after the patch that records them, once
	for _, e := range d.Events {
		t := corev1.EventTypeNormal
		if e.Warning {
			t = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p, nil, t, e.Reason.Reason, "Promote", "%s", e.Message)
	}

	after := d.RequeueAfter
	soonest := func(d time.Duration) {
		if d > 0 && (after == 0 || d < after) {
			after = d
		}
	}
	if !p.Spec.Suspend {
		// Periodic work is jittered (see jitter); timed wake-ups are not.
		soonest(jitter(nextScan))
		if slices.ContainsFunc(d.Status.Stages, func(s sluicev1beta1.PipelineStageStatus) bool { return busy(s.State) }) || failed {
			soonest(jitter(r.pollInterval()))
		}
	}
	log.V(1).Info("Decided", "writes", len(d.Writes), "waits", len(d.Waits), "requeueAfter", after)
	return ctrl.Result{RequeueAfter: after}, nil
}

func (r *Reconciler) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return DefaultPollInterval
}
