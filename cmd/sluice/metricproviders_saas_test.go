package main

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

// TestNewMetricProviders_SaaS: the manager registers the hosted providers,
// each refusing a template without its Secret.
func TestNewMetricProviders_SaaS(t *testing.T) {
	g := NewWithT(t)
	providers := newMetricProviders(nil)
	g.Expect(providers.Types()).To(ContainElements("datadog", "dynatrace", "newrelic", "prometheus", "splunk"))
	for _, typ := range []string{"datadog", "dynatrace", "newrelic", "splunk"} {
		_, err := providers[typ](context.Background(), metrics.ProviderConfig{Type: typ, Address: "https://metrics.example", Secret: map[string][]byte{}})
		g.Expect(err).To(MatchError(metrics.ErrInvalidConfig), typ)
		g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key")), typ)
	}
}
