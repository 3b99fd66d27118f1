package gitsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Reasons of the GitSync conditions.
const (
	ReasonSucceeded         = "ReconciliationSucceeded"
	ReasonProgressing       = "Progressing"
	ReasonSuspended         = "Suspended"
	ReasonCredentialsFailed = "CredentialsFailed"
	ReasonFetchFailed       = "FetchFailed"
	ReasonBuildFailed       = "BuildFailed"
	ReasonApplyFailed       = "ApplyFailed"
	ReasonPruneFailed       = "PruneFailed"
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonKubeConfigFailed: the remote cluster of spec.kubeConfig cannot
	// be reached or its kubeconfig is missing or refused.
	ReasonKubeConfigFailed = "KubeConfigFailed"
)

// maxMessage bounds the messages written into status.
const maxMessage = 4096

// GitSyncReconciler syncs GitSyncs: fetch, build, apply, prune, wait, and
// one status patch, every interval.
type GitSyncReconciler struct {
	// Client reads GitSyncs from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads the credentials Secrets and the ConfigMaps and Secrets
	// of spec.postBuild, which are not cached.
	APIReader client.Reader
	// Fetcher holds the checkouts.
	Fetcher *Fetcher
	// Applier applies, prunes and waits.
	Applier *Applier
	// MaxConcurrentReconciles is the number of workers.
	MaxConcurrentReconciles int
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool

	// Recorder records events on GitSyncs (drift corrections); the
	// manager's when nil.
	Recorder events.EventRecorder
	// Clock tells when the full drift comparison is due (tests); the real one when nil.
	Clock clock.PassiveClock

	// DependencyRequeueInterval is how often a GitSync waiting for its
	// spec.dependsOn looks again; DefaultDependencyRequeueInterval when 0.
	DependencyRequeueInterval time.Duration
	// ClusterName joins the default context of commit statuses (--cluster-name).
	ClusterName string

	// Notifier sends the events of spec.alerts; nil sends nothing.
	Notifier Notifier

	notified     notifiedMemory
	helm         helmState
	drift        *driftWatcher
	impersonator *impersonator
	remotes      remoteClusters
}

var _ reconcile.Reconciler = (*GitSyncReconciler)(nil)

// The markers below grant what GitSync needs for itself: its own objects,
// credentials Secrets, and the ServiceAccounts it impersonates for
// spec.serviceAccountName. What it may apply from Git is not generated: the
// chart grants it from values (gitSync.apply), see docs/install.md.

// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs/finalizers,verbs=update
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler with the manager.
func (r *GitSyncReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Applier == nil {
		r.Applier = &Applier{Client: mgr.GetClient(), Mapper: mgr.GetRESTMapper()}
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("sluice-gitsync")
	}
	r.impersonator = &impersonator{config: mgr.GetConfig(), scheme: mgr.GetScheme()}
	if r.Fetcher == nil {
		return errors.New("GitSyncReconciler needs a Fetcher")
	}
	var err error
	if r.drift, err = newDriftWatcherFor(mgr, r); err != nil {
		return err
	}
	workers := r.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 2
	}
	skip := r.SkipNameValidation
	b := ctrl.NewControllerManagedBy(mgr).
		For(&sluicev1beta1.GitSync{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(r.drift.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: &skip})
	b, err = r.watchDependencies(ctx, mgr, b)
	if err != nil {
		return err
	}
	return b.Complete(r)
}

// Reconcile runs one sync of a GitSync and records it in its status.
func (r *GitSyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	gs := &sluicev1beta1.GitSync{}
	if err := r.Client.Get(ctx, req.NamespacedName, gs); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Name, req.Namespace)
			r.notified.forget(req.NamespacedName)
			r.drift.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gs.DeletionTimestamp.IsZero() || gs.Spec.Suspend {
		r.drift.forget(req.NamespacedName)
	}
	if !gs.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, gs)
	}
	if err := r.ensureFinalizer(ctx, gs); err != nil {
		return ctrl.Result{}, err
	}
	status := gs.Status.DeepCopy()
	if gs.Spec.Suspend {
		status.ObservedGeneration = gs.Generation
		setCondition(status, gs, sluicev1beta1.ReconcilingCondition, metav1.ConditionFalse, ReasonSuspended, "the GitSync is suspended")
		return ctrl.Result{}, r.patchStatus(ctx, gs, status)
	}

	// spec.dependsOn: nothing is fetched, applied or pruned while it waits.
	if res, waiting, err := r.dependencies(ctx, gs, status); err != nil || waiting {
		if err != nil {
			return ctrl.Result{}, err
		}
		return res, r.patchStatus(ctx, gs, status)
	}

	start := time.Now()
	var drift []Drift
	var out syncOutcome
	err := r.sync(ctx, gs, status, &drift, &out)
	retry := summarize(gs, status, err)
	status.LastHandledSyncRequest = gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation]
	recordSync(gs.Name, gs.Namespace, time.Since(start), status.LastFailureReason, len(status.Inventory), start)
	csBefore := gs.Status.CommitStatus.DeepCopy()
	if err != nil && !isHooksWaiting(err) {
		log.Info("sync failed", "reason", status.LastFailureReason, "error", status.LastFailureMessage, "revision", status.LastAttemptedRevision)
	} else {
		log.V(1).Info("synced", "revision", status.LastAppliedRevision, "objects", len(status.Inventory), "duration", time.Since(start))
	}
	notes := r.alertDeliveries(gs, status, out, drift)
	if err := r.patchStatus(ctx, gs, status); err != nil {
		return ctrl.Result{}, err
	}
	// Counted and announced once the status that follows them is written.
	r.reportDrift(gs, drift)
	// Alerts are queued (never block); the commit status is posted in line,
	// with retries bounded to 45 s, so it goes last.
	r.notify(gs, notes)
	r.postCommitStatus(ctx, gs, csBefore)
	if retry {
		// A transient failure: back off (rate-limited) rather than wait an interval.
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nextSync(gs, err)}, nil
}

// sync fetches, builds, applies, prunes and waits, filling status. Nothing
// is pruned unless the fetch, build and apply succeeded.
func (r *GitSyncReconciler) sync(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus, drift *[]Drift, out *syncOutcome) (err error) {
	log := ctrl.LoggerFrom(ctx)
	creds, err := r.credentials(ctx, gs)
	if err != nil {
		return fail(ReasonCredentialsFailed, false, err)
	}
	applier, err := r.applierFor(ctx, gs)
	if err != nil {
		if gs.Spec.KubeConfig != nil {
			return fail(ReasonKubeConfigFailed, errors.Is(err, errUnusableKubeConfig), err)
		}
		return fail(ReasonApplyFailed, false, err)
	}
	fctx, cancel := context.WithTimeout(ctx, gs.TimeoutOrDefault())
	co, err := r.Fetcher.Fetch(fctx, gs.Spec.URL, SelectRef(gs.Spec.Ref), creds)
	cancel()
	if err != nil {
		return fail(ReasonFetchFailed, false, err)
	}
	status.LastAttemptedRevision = co.Revision
	out.commit = co.Commit
	if co.Fetched {
		log.Info("fetched", "revision", co.Revision)
	}
	if err := r.verifySource(ctx, gs, co, status); err != nil {
		return err
	}
	r.commitStatusPending(ctx, gs, status, co.Revision)
	defer func() { r.commitStatusOutcome(gs, status, co.Revision, err) }()
	dec, err := r.decryptor(ctx, gs)
	if err != nil {
		return fail(ReasonDecryptionFailed, false, err)
	}
	defer func() { err = dec.Redact(err) }()
	// spec.helm renders a chart instead of the kustomize build (helm_sync.go).
	release, objs, err := r.helmBuild(ctx, gs, status, co.Dir)
	if err != nil {
		return err
	}
	if release == nil {
		objs, err = Build(co.Dir, gs.Spec.Path, WithDecryptor(dec))
	}
	if decryptionFailed(err) {
		return fail(ReasonDecryptionFailed, true, err)
	}
	if err != nil {
		return fail(ReasonBuildFailed, true, err)
	}
	if objs, err = Customize(objs, gs.Spec.Patches, gs.Spec.Images); err != nil {
		return fail(ReasonBuildFailed, true, err)
	}
	objs, err = r.postBuild(ctx, gs, objs)
	if err != nil {
		return err
	}
	// A chart release that failed its health checks is retried, then rolled
	// back to the last healthy one (helm_remediation.go); release is nil
	// while the objects are those of the release rolled back to.
	plan, objs, release, err := r.helmRemediation(ctx, gs, status, release, co.Revision, objs)
	if err != nil {
		return err
	}
	defer func() { err = plan.finish(ctx, err) }()
	objs, err = applier.Prepare(ctx, gs, objs)
	if err != nil {
		return fail(ReasonBuildFailed, true, err)
	}
	digest, err := Digest(objs)
	if err != nil {
		return fail(ReasonBuildFailed, true, err)
	}
	// A new release runs its pre-install or pre-upgrade hooks first (helm_hooks.go).
	if err := r.helmPreHooks(ctx, gs, status, applier, release); err != nil {
		return err
	}
	st, dirty := r.drift.take(client.ObjectKeyFromObject(gs))
	if done, err := r.correctDriftOnly(ctx, gs, status, applier, st, dirty, co.Revision, digest, objs, drift); done {
		if err != nil {
			return err
		}
		return r.helmPostHooks(ctx, gs, status, applier, release) // the release is applied: its post hooks, tests
	}
	send, full := r.objectsToApply(gs, st, dirty, co.Revision, objs)
	if !full {
		log.V(1).Info("sending only the objects that changed", "objects", len(send), "of", len(objs))
	}
	cs, err := applier.Apply(ctx, send)
	if err != nil {
		return fail(ReasonApplyFailed, false, err)
	}
	out.changes = cs
	*drift = drifted(cs, status.LastAppliedDigest != "" && status.LastAppliedDigest == digest)
	if cs != nil {
		for _, e := range cs.Entries {
			if e.Action != "unchanged" {
				log.Info("applied", "object", e.Subject, "action", string(e.Action))
			}
		}
	}
	// Which commit brought the workloads and configs this apply changed, for
	// the releases they start (see source.go).
	r.annotateSources(ctx, gs, applier, cs, co)
	inv := Inventory(objs)
	if gs.PruneEnabled() {
		r.drift.pruning(client.ObjectKeyFromObject(gs), Diff(status.Inventory, inv))
		pruned, err := applier.Prune(ctx, gs, status.Inventory, objs)
		out.pruned = pruned
		for _, p := range pruned {
			log.Info("pruned", "kind", p.Kind, "namespace", p.Namespace, "name", p.Name)
		}
		if err != nil {
			// Keep the stale entries so that the next sync prunes them.
			status.Inventory = mergeInventory(inv, Diff(status.Inventory, inv))
			return fail(ReasonPruneFailed, false, err)
		}
	}
	status.Inventory = inv
	status.LastAppliedRevision = co.Revision
	status.LastAppliedCommit = appliedCommit(co.Commit)
	status.LastAppliedDigest = digest
	recordHelm(status, release)
	now := metav1.Now()
	status.LastAppliedTime = &now
	r.watchApplied(ctx, gs, co.Revision, digest, inv, objs, full)
	set, err := applier.HealthSet(gs, cs)
	if err != nil {
		return fail(ReasonHealthCheckFailed, true, err)
	}
	set = healthSetOf(gs, set, objs, full)
	if err := applier.Wait(ctx, set, gs.TimeoutOrDefault()); err != nil {
		return fail(ReasonHealthCheckFailed, false, err)
	}
	// Then its post-install or post-upgrade hooks and chart tests.
	return r.helmPostHooks(ctx, gs, status, applier, release)
}

func mergeInventory(a, b []sluicev1beta1.GitSyncInventoryEntry) []sluicev1beta1.GitSyncInventoryEntry {
	out := append(append([]sluicev1beta1.GitSyncInventoryEntry{}, a...), b...)
	return out
}

// credentials reads spec.secretRef; its values never leave this struct.
func (r *GitSyncReconciler) credentials(ctx context.Context, gs *sluicev1beta1.GitSync) (*Credentials, error) {
	if gs.Spec.SecretRef == nil {
		return nil, nil
	}
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: gs.Namespace, Name: gs.Spec.SecretRef.Name}
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %s not found: %w", key.Name, err)
		}
		return nil, fmt.Errorf("failed to read secret %s: %w", key.Name, err)
	}
	return &Credentials{
		Username:    string(s.Data["username"]),
		Password:    string(s.Data["password"]),
		BearerToken: string(s.Data["bearerToken"]),
		Identity:    s.Data["identity"],
		KnownHosts:  s.Data["known_hosts"],
	}, nil
}

// jitter spreads the syncs of many GitSyncs: up to 5% more than d.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/20+1) //nolint:gosec // G404: spreading load needs no unpredictability.
}

func setCondition(status *sluicev1beta1.GitSyncStatus, gs *sluicev1beta1.GitSync, t string, s metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gs.Generation,
	})
}

func (r *GitSyncReconciler) patchStatus(ctx context.Context, gs *sluicev1beta1.GitSync, status *sluicev1beta1.GitSyncStatus) error {
	if equality.Semantic.DeepEqual(&gs.Status, status) {
		return nil // even an empty merge patch is a write
	}
	patch := client.MergeFrom(gs.DeepCopy())
	gs.Status = *status
	if err := r.Client.Status().Patch(ctx, gs, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to patch the status of GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "…"
}
