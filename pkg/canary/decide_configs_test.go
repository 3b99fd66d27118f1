package canary

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
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

// TestDecide_ConfigVersionsFollowUnchangedData: a tracked config whose
// object changed but whose data did not (a label, say) is recorded at its
// new version, so that it is not read again on every reconcile.
func TestDecide_ConfigVersionsFollowUnchangedData(t *testing.T) {
	g := NewWithT(t)
	c := dtCanary(dtProgressive(), dtStatus(dtPhSucceeded))
	c.Status.TrackedConfigs = map[string]string{"configmap/app": "sum-1"}
	c.Status.TrackedConfigVersions = map[string]string{"configmap/app": "41"}
	c.Status.Revision = revisionOf(c.Status.LastAppliedSpec, c.Status.TrackedConfigs)
	d := Decide(dtObserve(c, func(o *Observation) {
		o.Target.Configs = map[string]string{"configmap/app": "sum-1"}
		o.Target.ConfigVersions = map[string]string{"configmap/app": "42"}
	}))
	g.Expect(d.Status.Phase).To(Equal(dtPhSucceeded), "same data: no release")
	g.Expect(d.Status.TrackedConfigVersions).To(Equal(map[string]string{"configmap/app": "42"}))
}

// TestDecide_WaitMessageStableWhileTheReasonHolds: while a release waits
// for the same reason, the Progressing message keeps its first wording, so
// that every change of a Deployment's readiness count is not a status write.
func TestDecide_WaitMessageStableWhileTheReasonHolds(t *testing.T) {
	g := NewWithT(t)
	c := dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10),
		dtCondition(sluicev1beta1.ProgressingCondition, metav1.ConditionTrue, "CanaryNotReady")))
	d := Decide(dtObserve(c, dtTargetNotReady("1/2")))
	cond := dtCondOf(d, sluicev1beta1.ProgressingCondition)
	g.Expect(cond.Reason).To(Equal("CanaryNotReady"))
	g.Expect(cond.Message).To(Equal("CanaryNotReady"), "the message kept its first wording")

	// Without that condition yet, the message has the detail.
	fresh := dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(10)))
	d = Decide(dtObserve(fresh, dtTargetNotReady("1/2")))
	g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Reason).To(Equal("CanaryNotReady"))
	g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Message).To(ContainSubstring("1/2"))
}

// TestDecide_WaitsAfterStartAndPromotionCostNoStatusWrite: the wait that
// always follows a start (canary pods not ready) and a promotion (primary
// not ready) is said in the same decision, so the reconcile that first sees
// the wait leaves the status as it was: no status write.
func TestDecide_WaitsAfterStartAndPromotionCostNoStatusWrite(t *testing.T) {
	g := NewWithT(t)
	c := dtCanary(dtProgressive(), dtStatus(dtPhSucceeded))
	d := Decide(dtObserve(c, dtTargetHash(dtHashB)))
	g.Expect(d.Status.Phase).To(Equal(dtPhProgressing))
	g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Reason).To(Equal("CanaryNotReady"))

	c.Status = d.Status
	next := Decide(dtObserve(c, dtAt(dtNow.Add(3*time.Second)), dtTargetNotReady("0 of 1 updated replicas available")))
	g.Expect(next.Status).To(Equal(c.Status), "the first wait for the canary's pods changes nothing")

	c = dtCanary(dtProgressive(), dtStatus(dtPhProgressing, dtWeight(50)), dtAnnotate(dtAnnotationPromote, "p1"))
	d = Decide(dtObserve(c))
	g.Expect(d.Status.Phase).To(Equal(dtPhPromoting))
	g.Expect(dtCondOf(d, sluicev1beta1.ProgressingCondition).Reason).To(Equal("PrimaryNotReady"))

	c.Status = d.Status
	c.Annotations = nil
	next = Decide(dtObserve(c, dtAt(dtNow.Add(3*time.Second)), dtPrimaryHash(dtHashA), dtPrimaryNotReady("0 of 1 updated replicas available")))
	g.Expect(next.Status.Phase).To(Equal(dtPhPromoting))
	g.Expect(next.Status).To(Equal(c.Status), "the first wait for the promoted primary changes nothing")
}
