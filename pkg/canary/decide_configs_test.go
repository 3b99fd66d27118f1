package canary

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestDecide_RecordsConfigVersions: the checksums of the tracked configs are
// recorded with the resourceVersions they were taken at, at initialization
// and when a release starts, so that observing a Canary reads a config's
// data from the API server only when the config has changed since.
func TestDecide_RecordsConfigVersions(t *testing.T) {
	g := NewWithT(t)
	withConfigs := func(o *Observation) {
		o.Target.Configs = map[string]string{"configmap/app": "sum-2"}
		o.Target.ConfigVersions = map[string]string{"configmap/app": "42"}
	}
	d := Decide(dtObserve(dtCanary(dtProgressive(), dtStatus("")), withConfigs))
	g.Expect(d.Status.Phase).To(Equal(dtPhInitialized))
	g.Expect(d.Status.TrackedConfigs).To(Equal(map[string]string{"configmap/app": "sum-2"}))
	g.Expect(d.Status.TrackedConfigVersions).To(Equal(map[string]string{"configmap/app": "42"}))

	// A changed config starts a release, which records its new version.
	d = Decide(dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhSucceeded)), withConfigs))
	g.Expect(d.Status.Phase).To(Equal(dtPhProgressing))
	g.Expect(d.Status.TrackedConfigVersions).To(Equal(map[string]string{"configmap/app": "42"}))
}
