package testenv

import (
	"fmt"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KEDACRDPath is where hack/crds.sh links KEDA's ScaledObject CRD, taken
// from KEDA's Go module.
const KEDACRDPath = "bin/crds-keda"

// WithKEDACRDs installs KEDA's ScaledObject CRD as the API server starts.
func WithKEDACRDs() Option {
	return WithCRDPaths(KEDACRDPath)
}

// InstallKEDACRDs installs KEDA's ScaledObject CRD into a running API server
// and waits until it is served. It lets one suite test both a cluster
// without KEDA (before the call) and one with it (after).
func (e *Environment) InstallKEDACRDs() error {
	_, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(e.Root, KEDACRDPath)},
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	})
	if err != nil {
		return fmt.Errorf("failed to install KEDA's CRDs (run hack/crds.sh): %w", err)
	}
	return nil
}
