package main

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/imagescan"
	"github.com/sluice-cd/sluice/pkg/promotion"
)

// setupPromotion registers the Pipeline controller with --enable-promotion;
// it is off by default until it is complete (pull requests on GitHub and
// GitLab and signing are not wired yet, see docs/promotion.md).
func setupPromotion(mgr ctrl.Manager, opts Options) error {
	if !opts.EnablePromotion {
		return nil
	}
	r := &promotion.Reconciler{
		Scanner: imagescan.NewRegistryScanner(imagescan.WithUserAgent("sluice/" + version)),
		Writer: &gitwrite.Writer{Identity: gitwrite.Identity{
			Name: opts.PromotionAuthorName, Email: opts.PromotionAuthorEmail,
		}},
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		SkipNameValidation:      opts.skipNameValidation,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the Pipeline controller: %w", err)
	}
	return nil
}
