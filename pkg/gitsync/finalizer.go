package gitsync

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ensureFinalizer adds the finalizer that prunes on deletion.
func (r *GitSyncReconciler) ensureFinalizer(ctx context.Context, gs *sluicev1beta1.GitSync) error {
	if controllerutil.ContainsFinalizer(gs, sluicev1beta1.GitSyncFinalizer) {
		return nil
	}
	patch := client.MergeFrom(gs.DeepCopy())
	controllerutil.AddFinalizer(gs, sluicev1beta1.GitSyncFinalizer)
	if err := r.Client.Patch(ctx, gs, patch); err != nil {
		return fmt.Errorf("failed to add the finalizer of GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	return nil
}

// finalize runs when a GitSync is deleted: with spec.prune (and not
// suspended), it deletes the objects of its inventory that still carry its
// ownership labels and do not opt out of pruning; then it lets the GitSync go.
// A suspended GitSync, or one with prune off, leaves everything in place.
// A chart's pre-delete and post-delete hooks run around the prune
// (helm_delete_hooks.go); while one runs, finalize asks to be requeued.
func (r *GitSyncReconciler) finalize(ctx context.Context, gs *sluicev1beta1.GitSync) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	if !controllerutil.ContainsFinalizer(gs, sluicev1beta1.GitSyncFinalizer) {
		forgetMetrics(gs.Name, gs.Namespace)
		return ctrl.Result{}, nil
	}
	if gs.PruneEnabled() && !gs.Spec.Suspend && len(gs.Status.Inventory) > 0 {
		applier, err := r.applierFor(ctx, gs)
		switch {
		case apierrors.IsNotFound(err):
			// The ServiceAccount went first (e.g. its namespace is being
			// deleted): nobody may prune in its name, so nothing is pruned.
			log.Info("not pruning: the GitSync's ServiceAccount is gone", "serviceAccountName", gs.Spec.ServiceAccountName)
			return ctrl.Result{}, r.release(ctx, gs)
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("failed to prune the objects of deleted GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
		}
		inventory := gs.Status.Inventory
		prune := func() error {
			pruned, err := applier.Prune(ctx, gs, inventory, nil)
			for _, p := range pruned {
				log.Info("pruned on deletion", "kind", p.Kind, "namespace", p.Namespace, "name", p.Name)
			}
			if err != nil {
				return fmt.Errorf("failed to prune the objects of deleted GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
			}
			return nil
		}
		if gs.Spec.Helm == nil {
			if err := prune(); err != nil {
				return ctrl.Result{}, err
			}
		} else if wait, err := r.finalizeHelm(ctx, gs, applier, prune); err != nil || wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, err
		}
	}
	return ctrl.Result{}, r.release(ctx, gs)
}

// release removes the finalizer and forgets the GitSync's metrics.
func (r *GitSyncReconciler) release(ctx context.Context, gs *sluicev1beta1.GitSync) error {
	patch := client.MergeFrom(gs.DeepCopy())
	controllerutil.RemoveFinalizer(gs, sluicev1beta1.GitSyncFinalizer)
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, gs, patch)); err != nil {
		return fmt.Errorf("failed to remove the finalizer of GitSync %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	forgetMetrics(gs.Name, gs.Namespace)
	return nil
}
