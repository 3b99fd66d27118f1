package gitsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/revision"
)

// The GitSync source annotations (gitsync.sluice.dev/revision, commit-time,
// applied-time, content-hash) tell the canary engine which commit brought
// the content it releases, so that a Canary's status.source, its commit
// statuses and its lead time name that commit. They are written after each
// apply on the workloads and configs the apply created or changed.
//
// They are written with a server-side apply of their own field manager:
// GitSync's applies own only the fields built from Git, so an apply of a
// new revision never removes them and they are never drift (they are not
// in the built objects, so neither the digest nor the incremental apply's
// hashes see them). A manager of their own also means a later write of the
// annotations replaces exactly the four of them.

// SourceFieldManager is the field manager of the source annotations.
const SourceFieldManager = "sluice-gitsync-source"

// ReasonSourceAnnotationFailed is the reason of the event recorded when the
// source annotations could not be written: the objects are applied, but a
// release they start will not know its commit.
const ReasonSourceAnnotationFailed = "SourceAnnotationFailed"

// Source is what the source annotations record about an apply.
type Source struct {
	// Revision is the GitSync revision, <ref>@sha1:<commit>.
	Revision string
	// CommitTime is the committer time of the commit; not written when zero.
	CommitTime time.Time
	// AppliedTime is when the revision was applied.
	AppliedTime time.Time
	// Unchanged also annotates the workloads and configs the apply left
	// unchanged whose content no annotation attributes yet (no content
	// hash, or another one). It is set for a revision new to the GitSync:
	// an earlier apply of it may have ended before annotating (the manager
	// killed in between), and the release it started would otherwise never
	// learn its commit (nor a Pipeline waiting for that commit its verdict).
	Unchanged bool
}

// sourceKinds are the kinds whose content a release is made of: the
// workloads with a pod template (the engine's targets) and the configs a
// pod template references (the engine's tracked configs).
var sourceKinds = map[schema.GroupKind]schema.GroupVersionKind{
	{Group: "apps", Kind: "Deployment"}:  appsv1.SchemeGroupVersion.WithKind("Deployment"),
	{Group: "apps", Kind: "StatefulSet"}: appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	{Group: "apps", Kind: "DaemonSet"}:   appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
	{Group: "", Kind: "ConfigMap"}:       corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	{Group: "", Kind: "Secret"}:          corev1.SchemeGroupVersion.WithKind("Secret"),
}

// annotateSources writes the source annotations after a successful apply.
// A failure does not fail the sync (the objects are applied as Git wants
// them); it is logged and recorded as a Warning event on the GitSync.
func (r *GitSyncReconciler) annotateSources(ctx context.Context, gs *sluicev1beta1.GitSync, a *Applier, cs *ssa.ChangeSet, co Checkout) {
	src := Source{Revision: co.Revision, CommitTime: co.Commit.Time, AppliedTime: r.clock().Now(),
		Unchanged: gs.Status.LastAppliedRevision != co.Revision}
	n, err := a.AnnotateSources(ctx, cs, src)
	log := ctrl.LoggerFrom(ctx)
	if n > 0 {
		log.V(1).Info("Recorded the revision on the objects it changed", "revision", co.Revision, "objects", n)
	}
	if err == nil {
		return
	}
	log.Error(err, "Failed to record the revision on the objects it changed", "revision", co.Revision)
	if r.Recorder != nil {
		r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, ReasonSourceAnnotationFailed, "Annotate", "%s", truncate(err.Error()))
	}
}

// AnnotateSources writes the source annotations on the workloads and
// configs that cs reports created or configured (or unchanged, with
// src.Unchanged), and returns how many it wrote. Each is read back from the cluster, and its content hash computed
// as the engine computes it (pkg/revision). An object whose content-hash
// annotation already matches is left alone: its content came from an
// earlier commit (this apply changed other fields, such as labels, or put
// back a change made by hand), and that commit stays the one that brought it.
func (a *Applier) AnnotateSources(ctx context.Context, cs *ssa.ChangeSet, src Source) (int, error) {
	if cs == nil {
		return 0, nil
	}
	var errs []error
	n := 0
	for _, e := range cs.Entries {
		if e.Action != ssa.CreatedAction && e.Action != ssa.ConfiguredAction &&
			(!src.Unchanged || e.Action != ssa.UnchangedAction) {
			continue
		}
		gvk, ok := sourceKinds[e.ObjMetadata.GroupKind]
		if !ok {
			continue
		}
		key := client.ObjectKey{Namespace: e.ObjMetadata.Namespace, Name: e.ObjMetadata.Name}
		wrote, err := a.annotateSource(ctx, gvk, key, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wrote {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// annotateBackoff paces the attempts to annotate an object that keeps
// changing under them. A workload GitSync just changed is written to many
// times in the next seconds (kube-controller-manager reports its new
// ReplicaSet's progress, the engine scales a Canary's target up), and every
// write in between the read and the apply is a conflict. The client's
// default (five attempts 10 ms apart) gave up on a loaded machine, and an
// annotation that gave up is never written: the next sync of the revision
// finds the object unchanged, and the release never learns its commit.
// This one makes ten attempts over about five seconds, doubling the pause
// from 10 ms (no Cap: reaching a wait.Backoff's cap ends the attempts).
var annotateBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.1}

// annotateSource annotates one object. The apply carries the
// resourceVersion the content hash was computed from, so an object changed
// in between is read again rather than annotated with a stale hash (and a
// deleted one is not created again).
func (a *Applier) annotateSource(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey, src Source) (bool, error) {
	wrote := false
	err := retry.RetryOnConflict(annotateBackoff, func() error {
		wrote = false
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(gvk)
		// Unstructured reads are not cached: this is the object as applied.
		if err := a.Client.Get(ctx, key, live); err != nil {
			return client.IgnoreNotFound(err)
		}
		hash, err := contentHash(live)
		if err != nil {
			return err
		}
		if live.GetAnnotations()[sluicev1beta1.GitSyncContentHashAnnotation] == hash {
			return nil
		}
		patch := sourcePatch(gvk, live, src, hash)
		if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(patch),
			client.FieldOwner(SourceFieldManager), client.ForceOwnership); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("failed to annotate %s %s/%s with its revision: %w", gvk.Kind, key.Namespace, key.Name, err)
	}
	return wrote, nil
}

// sourcePatch is the apply configuration of the annotations: nothing but
// them, at the resourceVersion read.
func sourcePatch(gvk schema.GroupVersionKind, live *unstructured.Unstructured, src Source, hash string) *unstructured.Unstructured {
	annotations := map[string]any{
		sluicev1beta1.GitSyncRevisionAnnotation:    src.Revision,
		sluicev1beta1.GitSyncAppliedTimeAnnotation: src.AppliedTime.UTC().Format(time.RFC3339),
		sluicev1beta1.GitSyncContentHashAnnotation: hash,
	}
	if !src.CommitTime.IsZero() {
		annotations[sluicev1beta1.GitSyncCommitTimeAnnotation] = src.CommitTime.UTC().Format(time.RFC3339)
	}
	patch := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{
			"name":            live.GetName(),
			"namespace":       live.GetNamespace(),
			"resourceVersion": live.GetResourceVersion(),
			"annotations":     annotations,
		},
	}}
	patch.SetGroupVersionKind(gvk)
	return patch
}

// contentHash is the hash the engine compares for an object: the pod
// template hash of a workload, the data checksum of a ConfigMap or Secret.
func contentHash(u *unstructured.Unstructured) (string, error) {
	var obj runtime.Object
	switch u.GetKind() {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Secret":
		obj = &corev1.Secret{}
	default:
		return "", fmt.Errorf("no content hash for kind %s", u.GetKind())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return "", fmt.Errorf("failed to read %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return revision.TemplateHash(&o.Spec.Template), nil
	case *appsv1.StatefulSet:
		return revision.TemplateHash(&o.Spec.Template), nil
	case *appsv1.DaemonSet:
		return revision.TemplateHash(&o.Spec.Template), nil
	case *corev1.ConfigMap:
		return revision.ConfigMapChecksum(o), nil
	case *corev1.Secret:
		return revision.SecretChecksum(o), nil
	}
	return "", nil
}
