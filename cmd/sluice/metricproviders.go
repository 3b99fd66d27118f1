package main

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/cloudwatch"
	"github.com/sluice-cd/sluice/pkg/metrics/datadog"
	"github.com/sluice-cd/sluice/pkg/metrics/dynatrace"
	"github.com/sluice-cd/sluice/pkg/metrics/externalmetrics"
	"github.com/sluice-cd/sluice/pkg/metrics/graphite"
	"github.com/sluice-cd/sluice/pkg/metrics/influxdb"
	"github.com/sluice-cd/sluice/pkg/metrics/keptn"
	"github.com/sluice-cd/sluice/pkg/metrics/newrelic"
	"github.com/sluice-cd/sluice/pkg/metrics/splunk"
	"github.com/sluice-cd/sluice/pkg/metrics/stackdriver"
	"github.com/sluice-cd/sluice/pkg/metrics/web"
)

// newMetricProviders is the registry of metric providers, by MetricTemplate
// spec.provider.type. Each provider is added here explicitly: there is no
// init() registration, and a type missing here is an UnsupportedProvider
// error at run time (the CRD's enum rejects types no version knows). kube is
// the manager's client (it reads unstructured objects live), for providers
// that read the cluster (keptn).
func newMetricProviders(kube client.Client) metrics.Providers {
	return metrics.Providers{
		"prometheus":      metrics.NewPrometheusProvider,
		"datadog":         datadog.New,
		"newrelic":        newrelic.New,
		"dynatrace":       dynatrace.New,
		"splunk":          splunk.New,
		"cloudwatch":      cloudwatch.New,
		"stackdriver":     stackdriver.New,
		"externalmetrics": externalmetrics.New,
		"graphite":        graphite.New,
		"influxdb":        influxdb.New,
		"keptn":           keptn.New(kube),
		"web":             web.New,
	}
}
