package main

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-cd/sluice/pkg/canary"
)

// registerDeliveryCollector serves the delivery counters of the Canaries
// (read from their status in the manager's cache) on the metrics endpoint.
// A collector of an earlier manager of this process (tests run several) is
// replaced: its cache is gone with its manager.
func registerDeliveryCollector(mgr ctrl.Manager) error {
	c := &canary.DeliveryCollector{Reader: mgr.GetClient()}
	err := ctrlmetrics.Registry.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		ctrlmetrics.Registry.Unregister(already.ExistingCollector)
		err = ctrlmetrics.Registry.Register(c)
	}
	if err != nil {
		return fmt.Errorf("failed to register the delivery metrics: %w", err)
	}
	return nil
}
