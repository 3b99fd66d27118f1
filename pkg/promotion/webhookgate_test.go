package promotion

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func gated() stageOpt {
	return func(s *sluicev1beta1.PipelineStage) {
		s.Webhook = &sluicev1beta1.PipelineWebhook{Name: "release-gate", URL: "http://loadtester.test/gate/check"}
	}
}

// decideWith decides as world.decide does, with the webhook gates' answers
// of this reconcile in the observation.
func (w *world) decideWith(answers map[string]*WebhookAnswer) Decision {
	w.t.Helper()
	o := w.observation()
	for stage, a := range answers {
		so := o.Stages[stage]
		so.Webhook = a
		o.Stages[stage] = so
	}
	d := Decide(w.p, o, w.now)
	for _, wr := range d.Writes {
		w.writes = append(w.writes, wr)
		d.RecordCommit(wr.Stage, commitFor(wr.Stage, wr.Bundle.ID))
	}
	w.p.Status = d.Status
	w.last = d
	return d
}

// A stage with a webhook gate gets no bundle until the webhook answered 2xx
// for that very bundle: no answer, a refusal and an answer about another
// bundle keep it closed with WaitingForWebhook, the refusal quoted and its
// time recorded; a refusal not asked again yet stands; a 2xx lets it in.
func TestDecide_WebhookGate(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", gated())))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	id := bundleIDOf("1.1.0")

	// Not asked yet: closed, the gate says what it waits for.
	d := w.decideWith(nil)
	g.Expect(w.writesTo("production")).To(BeEmpty())
	gate := w.status("production").Gate
	g.Expect(gate).NotTo(BeNil())
	g.Expect(gate.Bundle).To(Equal(id))
	g.Expect(gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(gate.Message).To(ContainSubstring("waits for webhook release-gate to answer 2xx"))
	g.Expect(gate.LastWebhookCheck).To(BeNil())
	g.Expect(d.Waits).To(ContainElement(And(HaveField("Stage", "production"), HaveField("Reason.Reason", sluicev1beta1.PipelineReasonWaitingForWebhook))))
	ready := condition(d.Status, "Ready")
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))

	// Refused: closed, the answer quoted, asked again at NextCheck.
	w.now = w.now.Add(time.Minute)
	d = w.decideWith(map[string]*WebhookAnswer{"production": {
		Bundle: id, At: w.now, Message: `webhook release-gate returned 403 Forbidden: "gate web.apps is closed"`, NextCheck: w.now.Add(30 * time.Second),
	}})
	g.Expect(w.writesTo("production")).To(BeEmpty())
	gate = w.status("production").Gate
	g.Expect(gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(gate.Message).To(ContainSubstring(`403 Forbidden: "gate web.apps is closed"`))
	g.Expect(gate.LastWebhookCheck.Time).To(Equal(w.now))
	g.Expect(d.RequeueAfter).To(Equal(30 * time.Second))
	refusedAt := w.now

	// Not due again: the last answer stands.
	w.now = w.now.Add(10 * time.Second)
	d = w.decideWith(map[string]*WebhookAnswer{"production": {Bundle: id, NextCheck: refusedAt.Add(30 * time.Second)}})
	g.Expect(w.writesTo("production")).To(BeEmpty())
	gate = w.status("production").Gate
	g.Expect(gate.Message).To(ContainSubstring("gate web.apps is closed"))
	g.Expect(gate.LastWebhookCheck.Time).To(Equal(refusedAt))
	g.Expect(d.RequeueAfter).To(Equal(20 * time.Second))

	// A 2xx about another bundle opens nothing.
	w.now = w.now.Add(30 * time.Second)
	w.decideWith(map[string]*WebhookAnswer{"production": {Bundle: bundleIDOf("9.9.9"), At: w.now, Open: true}})
	g.Expect(w.writesTo("production")).To(BeEmpty())
	g.Expect(w.status("production").Gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))

	// A 2xx for the bundle: written, the gate cleared.
	w.decideWith(map[string]*WebhookAnswer{"production": {Bundle: id, At: w.now, Open: true}})
	g.Expect(w.writesTo("production")).To(ConsistOf(HaveField("Bundle.ID", id)))
	st := w.status("production")
	g.Expect(st.Gate).To(BeNil())
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
}

// The webhook is the last gate: a held stage, a bundle waiting for approval
// or outside every window waits for that, and an open webhook does not let
// it through.
func TestDecide_WebhookGateAfterTheOtherGates(t *testing.T) {
	open := func(w *world) map[string]*WebhookAnswer {
		return map[string]*WebhookAnswer{"production": {Bundle: bundleIDOf("1.1.0"), At: w.now, Open: true}}
	}
	for _, tc := range []struct {
		name string
		opt  stageOpt
		want string
	}{
		{"held", func(s *sluicev1beta1.PipelineStage) { s.Hold = &sluicev1beta1.PipelineHold{Reason: "incident"} }, sluicev1beta1.PipelineReasonHeld},
		{"manual", manual(), sluicev1beta1.PipelineReasonWaitingForApproval},
		{"window", window("UTC", "02:00", "03:00"), sluicev1beta1.PipelineReasonOutsidePromotionWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			w := newWorld(t, newPipeline(stage("staging"), stage("production", gated(), tc.opt)))
			w.push("1.1.0")
			w.decide()
			w.release("staging", sluicev1beta1.DeliveryPromoted)
			w.decideWith(open(w))
			g.Expect(w.writesTo("production")).To(BeEmpty())
			g.Expect(w.status("production").Gate.Reason).To(Equal(tc.want))
		})
	}

	// Approved, the bundle goes on to the webhook gate.
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", gated(), manual())))
	w.push("1.1.0")
	w.decide()
	w.release("staging", sluicev1beta1.DeliveryPromoted)
	w.decide()
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineApproveAnnotation: "production/" + bundleIDOf("1.1.0")}
	w.decide()
	g.Expect(w.status("production").Gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	w.decideWith(open(w))
	g.Expect(w.writesTo("production")).To(HaveLen(1))
}

// A rollback request is a person's decision: it does not wait for the webhook.
func TestDecide_WebhookGateRollbackBypasses(t *testing.T) {
	g := NewWithT(t)
	w := newWorld(t, newPipeline(stage("staging"), stage("production", gated())))
	for _, tag := range []string{"1.1.0", "1.3.0"} {
		w.push(tag)
		w.decide()
		w.release("staging", sluicev1beta1.DeliveryPromoted)
		w.decideWith(map[string]*WebhookAnswer{"production": {Bundle: bundleIDOf(tag), At: w.now, Open: true}})
		w.release("production", sluicev1beta1.DeliveryPromoted)
		w.decide()
	}
	g.Expect(w.status("production").Bundle).To(Equal(bundleIDOf("1.3.0")))
	old := bundleIDOf("1.1.0")
	w.p.Annotations = map[string]string{sluicev1beta1.PipelineRollbackAnnotation: "production/" + old}
	d := w.decide() // no answer from the webhook
	g.Expect(d.Writes).To(ConsistOf(And(HaveField("Stage", "production"), HaveField("Rollback", true), HaveField("Bundle.ID", old))))
}

// The payload is Flagger's, for the Pipeline, with the stage, the bundle and
// its images in the metadata, which the spec's metadata cannot override.
func TestGatePayload(t *testing.T) {
	g := NewWithT(t)
	p := newPipeline(stage("production", gated()))
	s := &p.Spec.Stages[0]
	s.Webhook.Metadata = map[string]string{"team": "web", "stage": "spoofed"}
	b := &sluicev1beta1.Bundle{ID: "0123456789abcdef", Images: []sluicev1beta1.BundleImage{{Source: "web", Repository: "registry.test/org/web", Tag: "1.1.0", Digest: digestOf("1.1.0")}}}
	pl := GatePayload(p, s, b)
	g.Expect(pl.Name).To(Equal("web"))
	g.Expect(pl.Namespace).To(Equal("apps"))
	g.Expect(pl.Phase).To(Equal("Promoting"))
	g.Expect(pl.Checksum).To(Equal(b.ID))
	g.Expect(pl.Revision).To(Equal(b.ID))
	g.Expect(pl.Type).To(Equal("confirm-promotion"))
	g.Expect(pl.Metadata).To(Equal(map[string]string{
		"team": "web", "pipeline": "web", "stage": "production", "bundle": b.ID,
		"image.web": "registry.test/org/web:1.1.0@" + digestOf("1.1.0"),
	}))
}

func TestWithoutQuery(t *testing.T) {
	g := NewWithT(t)
	raw := "https://hooks.test/gate?token=s3cr3t"
	msg := `webhook g failed after 1s: Post "` + raw + `": dial tcp: refused`
	g.Expect(withoutQuery(msg, raw)).To(Equal(`webhook g failed after 1s: Post "https://hooks.test/gate": dial tcp: refused`))
}
