package notify

import (
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
)

// Given a provider that always refuses and one that accepts, the failed and
// delivered counters are labelled with the provider type and the Canary's
// namespace, and the registry serves them under those labels.
func TestDispatcher_MetricsByTypeAndNamespace(t *testing.T) {
	g := NewWithT(t)
	refusing := httptest.NewServer(&receiver{status: []int{503}})
	defer refusing.Close()
	accepting := httptest.NewServer(&receiver{status: []int{200}})
	defer accepting.Close()
	reg := prometheus.NewRegistry()
	d := newTestDispatcher(t, DispatcherOptions{Registerer: reg, MaxAttempts: 2},
		provider(TypeGeneric, refusing.URL), provider(TypeDiscord, accepting.URL))

	d.Dispatch(canaryWithAlerts(alert("down", "", TypeGeneric), alert("up", "", TypeDiscord)), failedRelease())
	g.Eventually(func() float64 { return counterValue(d.failed) }).Should(Equal(1.0))
	g.Eventually(func() float64 { return counterValue(d.delivered) }).Should(Equal(1.0))

	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	got := map[string]map[string]string{} // family -> labels of its one series
	for _, f := range families {
		g.Expect(f.GetMetric()).To(HaveLen(1), f.GetName())
		labels := map[string]string{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		got[f.GetName()] = labels
		want := 1.0
		if f.GetName() == "sluice_notifications_dropped_total" {
			want = 0
		}
		g.Expect(f.GetMetric()[0].GetCounter().GetValue()).To(Equal(want), f.GetName())
	}
	g.Expect(got).To(Equal(map[string]map[string]string{
		"sluice_notifications_dropped_total":   {},
		"sluice_notifications_failed_total":    {"type": TypeGeneric, "namespace": "test"},
		"sluice_notifications_delivered_total": {"type": TypeDiscord, "namespace": "test"},
	}))
	for name := range got {
		g.Expect(MetricNames).To(ContainElement(name))
	}
}
