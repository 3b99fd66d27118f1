package canary_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Given a metric measured by a real Prometheus at 91.3 against a minimum of
// 99, the release is rolled back at the threshold and the value is in the
// status; a metric whose MetricTemplate does not exist sets MetricsReady=False.
func TestCanary_MetricRollback(t *testing.T) {
	t.Parallel()
	prom, err := testenv.StartPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	f := newFixture(t, withMetrics(&metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: builtins(), DefaultAddress: prom.URL}))
	f.deployment("measured", "1.0", 1)
	f.canary("measured", "measured", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 5
		c.Spec.Analysis.Metrics = []sluicev1beta1.CanaryMetric{
			{Name: "success", Query: "vector(91.3)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
			{Name: "latency", TemplateRef: &sluicev1beta1.CrossNamespaceReference{Name: "missing"}},
		}
	})
	f.waitPhase("measured", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("measured", "2.0")
	c := f.waitPhase("measured", sluicev1beta1.CanaryPhaseFailed)
	f.g.Expect(f.image("measured-primary")()).To(Equal("example.com/app:1.0"))
	var success *sluicev1beta1.CheckResult
	for _, s := range c.Status.History {
		for i := range s.Checks {
			if s.Checks[i].Name == "success" {
				success = &s.Checks[i]
			}
		}
	}
	f.g.Expect(success).NotTo(BeNil())
	f.g.Expect(success.Outcome).To(Equal(sluicev1beta1.CheckFailed))
	f.g.Expect(*success.Value).To(Equal("91.3"))
	f.g.Expect(success.Message).To(Equal("success 91.3 is outside [99, +Inf]"))
	f.g.Expect(success.Query).To(Equal("vector(91.3)"))
	cond := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.MetricsReadyCondition)
	f.g.Expect(cond).NotTo(BeNil())
	f.g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	f.g.Expect(cond.Message).To(ContainSubstring("MetricTemplate " + f.ns + "/missing not found"))
	f.g.Eventually(f.eventReasons("measured"), 10*time.Second).Should(ContainElement("ThresholdReached"))
}
