package canary

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

// TestConfigReasons: every reason pkg/metrics gives a check that only a
// configuration change fixes makes MetricsReady False, a provider Secret
// without its key included; a failed query does not.
func TestConfigReasons(t *testing.T) {
	g := NewWithT(t)
	for _, r := range []string{metrics.ReasonTemplateNotFound, metrics.ReasonSecretNotFound, metrics.ReasonUnsupportedProvider,
		metrics.ReasonRenderFailed, metrics.ReasonInvalidProviderConfig} {
		g.Expect(configReasons).To(HaveKeyWithValue(r, true), r)
	}
	g.Expect(configReasons).NotTo(HaveKey(metrics.ReasonQueryFailed))
	g.Expect(configReasons).NotTo(HaveKey(metrics.ReasonMultipleSeries))
}
