package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/eventrec"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// setupGitSync registers the Git sync loop and, with --git-url, the
// bootstrap GitSync that points the cluster at a repository.
func setupGitSync(ctx context.Context, mgr ctrl.Manager, opts Options, notifier gitsync.Notifier, recorders *eventrec.Broadcaster) error {
	dir := opts.GitCacheDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sluice-git")
	}
	r := &gitsync.GitSyncReconciler{
		Fetcher:                 gitsync.NewFetcher(dir),
		Applier:                 &gitsync.Applier{Client: mgr.GetClient(), Mapper: mgr.GetRESTMapper(), DefaultProvider: opts.DefaultProvider},
		MaxConcurrentReconciles: opts.MaxConcurrentGitReconciles,
		SkipNameValidation:      opts.skipNameValidation,
		ClusterName:             opts.ClusterName,

		Notifier: notifier,
		Recorder: recorders.NewRecorder("sluice-gitsync"),
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("failed to set up the GitSync controller: %w", err)
	}
	if opts.GitReceiverAddr != "" {
		if err := mgr.Add(newReceiverServer(mgr, opts.GitReceiverAddr)); err != nil {
			return fmt.Errorf("failed to add the GitSync receiver: %w", err)
		}
	}
	if opts.GitURL == "" {
		return nil
	}
	// The bootstrap object is created once the manager runs (as leader), and
	// left alone afterwards: it is then the user's to change.
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return bootstrapGitSync(ctx, mgr.GetClient(), opts)
	}))
}

// bootstrapGitSync creates the GitSync that --git-url describes, unless it exists.
func bootstrapGitSync(ctx context.Context, c client.Client, opts Options) error {
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: opts.GitSyncName, Namespace: opts.GitSyncNamespace},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      opts.GitURL,
			Ref:      &sluicev1beta1.GitRef{Branch: opts.GitBranch},
			Path:     opts.GitPath,
			Interval: &metav1.Duration{Duration: opts.GitInterval},
		},
	}
	if opts.ShardKey != "" {
		// A shard sees only its own GitSyncs: the one it bootstraps is one.
		gs.Labels = map[string]string{sluicev1beta1.ShardLabel: opts.ShardKey}
	}
	if opts.GitSecret != "" {
		gs.Spec.SecretRef = &corev1.LocalObjectReference{Name: opts.GitSecret}
	}
	for {
		err := c.Create(ctx, gs)
		switch {
		case err == nil:
			ctrl.Log.Info("Created the bootstrap GitSync", "GitSync", opts.GitSyncNamespace+"/"+opts.GitSyncName, "url", opts.GitURL)
			return nil
		case apierrors.IsAlreadyExists(err):
			return nil
		}
		ctrl.Log.Error(err, "Failed to create the bootstrap GitSync; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}
