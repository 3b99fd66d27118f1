package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluice-cd/sluice/pkg/eventrec"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/imagescan"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/promotion"
	"github.com/sluice-cd/sluice/pkg/router"
)

// setupPromotion registers the Pipeline controller with --enable-promotion.
// The events of spec.alerts go through the dispatcher of the Canary alerts.
func setupPromotion(ctx context.Context, mgr ctrl.Manager, opts Options, routers *router.Registry, dispatcher *notify.Dispatcher, recorders *eventrec.Broadcaster) error {
	if !opts.EnablePromotion {
		return nil
	}
	signing, err := loadSigning(opts.PromotionSigningKey)
	if err != nil {
		return err
	}
	if signing != nil {
		ctrl.Log.WithName("promotion").Info("Promotion commits are signed", "key", signing.String())
	}
	r := &promotion.Reconciler{
		Scanner: imagescan.NewRegistryScanner(imagescan.WithUserAgent("sluice/" + version)),
		Writer: &gitwrite.Writer{
			Identity: gitwrite.Identity{Name: opts.PromotionAuthorName, Email: opts.PromotionAuthorEmail},
			Signing:  signing,
		},
		// A soak with soakChecks: Metrics checks as the engine's analysis does.
		Metrics: &metrics.Checker{Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(),
			DefaultAddress: opts.MetricsServer, Timeout: opts.MetricsQueryTimeout,
			Providers: newMetricProviders(mgr.GetClient()), Builtins: routers},
		Builtins:                   routers,
		DefaultProvider:            opts.DefaultProvider,
		Notifier:                   promotion.DispatchNotifier{D: dispatcher},
		Recorder:                   recorders.NewRecorder("sluice-promotion"),
		InsecureLoopbackRegistries: opts.PromotionInsecureLocal,
		MaxConcurrentReconciles:    opts.MaxConcurrentGitReconciles,
		SkipNameValidation:         opts.skipNameValidation,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("failed to set up the Pipeline controller: %w", err)
	}
	return nil
}

// maxSigningKey bounds the key file read (an armored RSA-4096 key is about 7 KiB).
const maxSigningKey = 64 << 10

// loadSigning reads the signing key of --promotion-signing-key: an armored
// OpenPGP key, or else an SSH key, decrypted with the file "passphrase"
// beside it when there is one. nil without a key. Errors never quote the key.
func loadSigning(path string) (*gitwrite.Signing, error) {
	if path == "" {
		return nil, nil
	}
	key, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("--promotion-signing-key: %w", err)
	}
	pass, err := readBounded(filepath.Join(filepath.Dir(path), "passphrase"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--promotion-signing-key: %w", err)
	}
	pass = bytes.TrimRight(pass, "\r\n")
	var s *gitwrite.Signing
	if bytes.Contains(key, []byte("BEGIN PGP PRIVATE KEY BLOCK")) {
		s, err = gitwrite.NewOpenPGPSigning(key, pass)
	} else {
		s, err = gitwrite.NewSSHSigning(key, pass)
	}
	if err != nil {
		return nil, fmt.Errorf("--promotion-signing-key %s: %w", path, err)
	}
	return s, nil
}

func readBounded(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxSigningKey {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSigningKey)
	}
	return os.ReadFile(path)
}
