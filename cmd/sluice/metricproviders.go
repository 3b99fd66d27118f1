package main

import (
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/graphite"
	"github.com/sluice-cd/sluice/pkg/metrics/influxdb"
	"github.com/sluice-cd/sluice/pkg/metrics/web"
)

// newMetricProviders is the registry of metric providers, by MetricTemplate
// spec.provider.type. Each provider is added here explicitly: there is no
// init() registration, and a type missing here is an UnsupportedProvider
// error at run time (the CRD's enum rejects types no version knows).
func newMetricProviders() metrics.Providers {
	return metrics.Providers{
		"prometheus": metrics.NewPrometheusProvider,
		"graphite":   graphite.New,
		"influxdb":   influxdb.New,
		"web":        web.New,
	}
}
