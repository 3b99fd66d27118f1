package promotion

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// alerting gives the world's Pipeline two alerts: team receives every
// event, oncall the failures and recoveries.
func alerting(w *world) {
	w.p.Spec.Alerts = []sluicev1beta1.PipelineAlert{
		{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}},
		{Name: "oncall", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "pager", Namespace: "ops"}, EventSeverity: AlertSeverityError},
	}
}

// decideAlerting decides as the controller does: the decision, its
// writes, then the alerts recorded in the status that is patched. It
// returns "<alert> <type> <stage> <tag>" for every delivery.
func (w *world) decideAlerting() []string {
	w.t.Helper()
	prev := w.p.Status.Alerts
	w.decide()
	var out []string
	for _, d := range decideAlerts(w.p, prev, &w.p.Status, w.now) {
		tag := "-"
		if len(d.Event.Bundle.Images) > 0 {
			tag = d.Event.Bundle.Images[0].Tag
		}
		out = append(out, strings.Join([]string{d.Alert, d.Event.Type, d.Event.Stage, tag}, " "))
	}
	return out
}

// The story of issue 18, as the alerts tell it: each fact once, a failure
// to both alerts, its end as Recovered to both.
func TestAlerts_EachFactOnceAndRecoveredAfterAFailure(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", manual())))
	alerting(w)

	w.push("1.1.0")
	g.Expect(w.decideAlerting()).To(Equal([]string{"team Committed staging 1.1.0"}))
	g.Expect(w.decideAlerting()).To(BeEmpty(), "a fact already sent is not sent again")
	g.Expect(w.p.Status.Alerts).To(ConsistOf(HaveField("Sent", []string{"Committed/" + bundleIDOf("1.1.0") + "/" + commitFor("staging", bundleIDOf("1.1.0"))})))

	// Verified in staging: production's manual gate holds it.
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	g.Expect(w.decideAlerting()).To(Equal([]string{"team WaitingForApproval production 1.1.0"}))
	w.now = w.now.Add(time.Minute)
	g.Expect(w.decideAlerting()).To(BeEmpty())

	// 1.2.0 fails staging's analysis: both alerts hear it, once.
	w.push("1.2.0")
	g.Expect(w.decideAlerting()).To(Equal([]string{"team Committed staging 1.2.0"}))
	w.release("staging", sluicev1beta1.DeliveryRolledBack)
	g.Expect(w.decideAlerting()).To(Equal([]string{"team VerificationFailed staging 1.2.0", "oncall VerificationFailed staging 1.2.0"}))
	g.Expect(w.decideAlerting()).To(BeEmpty())

	// 1.3.0 lands in staging: the failure is over.
	w.push("1.3.0")
	g.Expect(w.decideAlerting()).To(ConsistOf("team Committed staging 1.3.0", "team Recovered staging 1.3.0", "oncall Recovered staging 1.3.0"))
	g.Expect(w.decideAlerting()).To(BeEmpty())
}

func TestAlerts_AFailedWriteThenItsRecovery(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging")))
	alerting(w)
	w.push("1.1.0")
	w.failWrite["staging"] = Reason{Reason: sluicev1beta1.PipelineReasonPushRejected, Message: "push rejected: protected branch"}
	g.Expect(w.decideAlerting()).To(Equal([]string{"team PushRejected staging 1.1.0", "oncall PushRejected staging 1.1.0"}))
	w.failWrite["staging"] = Reason{Reason: sluicev1beta1.PipelineReasonPushRejected, Message: "push rejected: protected branch"}
	g.Expect(w.decideAlerting()).To(BeEmpty(), "the same failure of the same bundle is sent once")

	g.Expect(w.decideAlerting()).To(ConsistOf("team Committed staging 1.1.0", "team Recovered staging 1.1.0", "oncall Recovered staging 1.1.0"))
	var rec AlertEvent
	for _, d := range decideAlerts(w.p, nil, w.p.Status.DeepCopy(), w.now) {
		if d.Event.Type == AlertCommitted {
			rec = d.Event
		}
	}
	g.Expect(rec.Message).To(Equal("staging: bundle " + bundleIDOf("1.1.0") + " (web:1.1.0) committed as " + short(commitFor("staging", bundleIDOf("1.1.0")))))
}

func TestAlerts_ARollbackIsSentAsRolledBack(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging")))
	alerting(w)
	w.push("1.1.0")
	w.decideAlerting()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decideAlerting()
	w.push("1.2.0")
	w.now = w.now.Add(time.Minute)
	w.decideAlerting()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decideAlerting()

	w.p.Annotations = map[string]string{sluicev1beta1.PipelineRollbackAnnotation: "staging/" + bundleIDOf("1.1.0")}
	w.now = w.now.Add(time.Minute)
	g.Expect(w.decideAlerting()).To(Equal([]string{"team RolledBack staging 1.1.0"}))
	// The Canary releases the rollback's commit: nothing new to say.
	w.now = w.now.Add(time.Minute)
	w.release("staging", sluicev1beta1.DeliveryRunning)
	g.Expect(w.decideAlerting()).To(BeEmpty())
	g.Expect(w.status("staging").State).To(Equal(sluicev1beta1.StageVerifying))
}

func TestAlerts_WithoutAlertsNothingIsRecorded(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging")))
	w.push("1.1.0")
	g.Expect(w.decideAlerting()).To(BeEmpty())
	g.Expect(w.p.Status.Alerts).To(BeNil())

	// A stale record is dropped with the alerts.
	cur := w.p.Status.DeepCopy()
	cur.Alerts = []sluicev1beta1.PipelineAlertRecord{{Stage: "staging", Sent: []string{"x"}}}
	g.Expect(decideAlerts(w.p, cur.Alerts, cur, w.now)).To(BeEmpty())
	g.Expect(cur.Alerts).To(BeNil())
}

func TestAlerts_RecordIsBounded(t *testing.T) {
	g := NewWithT(t)
	p := newPipeline(stage("staging"))
	p.Spec.Alerts = []sluicev1beta1.PipelineAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
	st := sluicev1beta1.PipelineStatus{Stages: []sluicev1beta1.PipelineStageStatus{{
		Name: "staging", Bundle: strings.Repeat("a", 16), State: sluicev1beta1.StageFailed, Reason: strings.Repeat("R", 200),
		Gate: &sluicev1beta1.StageGate{Bundle: strings.Repeat("b", 16), Reason: sluicev1beta1.PipelineReasonWaitingForApproval},
	}}}
	ds := decideAlerts(p, nil, &st, t0)
	g.Expect(ds).To(HaveLen(2))
	g.Expect(ds[0].Provider.Namespace).To(Equal("apps"), "the provider defaults to the Pipeline's namespace")
	g.Expect(st.Alerts[0].Sent).To(HaveLen(2))
	for _, k := range st.Alerts[0].Sent {
		g.Expect(len(k)).To(BeNumerically("<=", 128))
	}
	g.Expect(ds[0].Event.Message).To(ContainSubstring("images unknown"))
}

// The memory of the last write wins over a stale cache, for the same
// Pipeline only (a new one of the same name has another UID).
func TestAlerts_MemoryIsPerPipelineUID(t *testing.T) {
	g := NewWithT(t)
	var m alertMemory
	key := types.NamespacedName{Namespace: "apps", Name: "web"}
	_, ok := m.get(key, "uid-1")
	g.Expect(ok).To(BeFalse())
	recs := []sluicev1beta1.PipelineAlertRecord{{Stage: "staging", Sent: []string{"Committed/a/b"}}}
	m.set(key, "uid-1", recs)
	recs[0].Sent[0] = "changed by the caller"
	got, ok := m.get(key, "uid-1")
	g.Expect(ok).To(BeTrue())
	g.Expect(got[0].Sent).To(Equal([]string{"Committed/a/b"}))
	_, ok = m.get(key, "uid-2")
	g.Expect(ok).To(BeFalse())
}
