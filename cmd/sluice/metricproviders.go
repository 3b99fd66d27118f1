package main

import (
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/cloudwatch"
	"github.com/sluice-cd/sluice/pkg/metrics/datadog"
	"github.com/sluice-cd/sluice/pkg/metrics/dynatrace"
	"github.com/sluice-cd/sluice/pkg/metrics/externalmetrics"
	"github.com/sluice-cd/sluice/pkg/metrics/newrelic"
	"github.com/sluice-cd/sluice/pkg/metrics/splunk"
	"github.com/sluice-cd/sluice/pkg/metrics/stackdriver"
)

// newMetricProviders is the registry of metric providers, by MetricTemplate
// spec.provider.type. Each provider is added here explicitly: there is no
// init() registration, and a type missing here is an UnsupportedProvider
// error at run time (the CRD's enum rejects types no version knows).
func newMetricProviders() metrics.Providers {
	return metrics.Providers{
		"prometheus":      metrics.NewPrometheusProvider,
		"datadog":         datadog.New,
		"newrelic":        newrelic.New,
		"dynatrace":       dynatrace.New,
		"splunk":          splunk.New,
		"cloudwatch":      cloudwatch.New,
		"stackdriver":     stackdriver.New,
		"externalmetrics": externalmetrics.New,
	}
}
