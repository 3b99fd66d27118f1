package gitsync

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// RequestSync sets the sync-requested-at annotation of a GitSync to now, so
// that the controller (which reconciles on annotation changes) syncs it at
// once: it checks the remote ref, builds and applies.
func RequestSync(ctx context.Context, c client.Client, gs *sluicev1beta1.GitSync, now time.Time) error {
	patch := client.MergeFrom(gs.DeepCopy())
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation] = now.UTC().Format(time.RFC3339Nano)
	return c.Patch(ctx, gs, patch)
}
