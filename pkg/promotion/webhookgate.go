package promotion

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// maxWebhookMessage bounds the webhook's answer quoted in status.stages[].gate.
const maxWebhookMessage = 768

// WebhookAnswer is what a stage's webhook gate (spec.stages[].webhook) said
// of the bundle waiting at it.
type WebhookAnswer struct {
	// Bundle is the id of the bundle asked about.
	Bundle string
	// At is when the webhook answered; zero when it was not asked in this
	// reconcile (its last answer, in status.stages[].gate, still stands).
	At time.Time
	// Open is true for an HTTP 2xx: the bundle may be written.
	Open bool
	// Message is why the gate stays closed: the status and the start of
	// the body, or the connection error, without the URL's query.
	Message string
	// NextCheck is when the webhook is asked again.
	NextCheck time.Time
}

// webhookOpen is the last gate of a stage: true when the stage has no
// webhook or its webhook answered 2xx for the candidate g.Bundle in this
// reconcile. Otherwise it fills g with WaitingForWebhook and the last answer
// (from the observation, or the status's while the next ask is not due).
func (x *decider) webhookOpen(spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, g *sluicev1beta1.StageGate) bool {
	if spec.Webhook == nil {
		return true
	}
	cand, name := g.Bundle, spec.Webhook.Name
	a := x.o.Stages[spec.Name].Webhook
	if a != nil && a.Bundle != cand {
		a = nil // an answer about another bundle says nothing of this one
	}
	g.Reason = sluicev1beta1.PipelineReasonWaitingForWebhook
	prev := st.Gate
	switch {
	case a != nil && !a.At.IsZero() && a.Open:
		return true
	case a != nil && !a.At.IsZero():
		g.Message = fmt.Sprintf("bundle %s waits for webhook %s, which answered: %s", cand, name, truncate(a.Message, maxWebhookMessage))
		g.LastWebhookCheck = ptrTime(a.At.UTC().Truncate(time.Second))
	case prev != nil && prev.Bundle == cand && prev.Reason == sluicev1beta1.PipelineReasonWaitingForWebhook && prev.LastWebhookCheck != nil:
		g.Message, g.LastWebhookCheck = prev.Message, prev.LastWebhookCheck.DeepCopy()
	default:
		g.Message = fmt.Sprintf("bundle %s waits for webhook %s to answer 2xx", cand, name)
	}
	if a != nil && !a.NextCheck.IsZero() {
		x.requeue(a.NextCheck)
	}
	return false
}

// webhookGates asks the webhook gate of each stage whose candidate bundle
// has passed every other gate (hold, approval, windows), at most once per
// stage and reconcile and at most once a poll interval per bundle (from
// status.stages[].gate.lastWebhookCheck, so that a restart does not ask
// again at once), and puts the answers in the observation. Which bundle
// waits where is decided by Decide itself, on the observation without the
// answers: Decide is pure, so the pre-decision changes nothing.
func (r *Reconciler) webhookGates(ctx context.Context, p *sluicev1beta1.Pipeline, o *Observation, now time.Time) {
	if p.Spec.Suspend || !slices.ContainsFunc(p.Spec.Stages, func(s sluicev1beta1.PipelineStage) bool { return s.Webhook != nil }) {
		return
	}
	pre := Decide(p, *o, now)
	poll := r.pollInterval()
	for i := range p.Spec.Stages {
		s := &p.Spec.Stages[i]
		if s.Webhook == nil || i >= len(pre.Status.Stages) {
			continue
		}
		g := pre.Status.Stages[i].Gate
		if g == nil || g.Reason != sluicev1beta1.PipelineReasonWaitingForWebhook {
			continue
		}
		a := &WebhookAnswer{Bundle: g.Bundle}
		if last := lastWebhookCheck(p, s.Name, g.Bundle); last != nil && now.Before(last.Add(poll)) {
			a.NextCheck = last.Add(poll)
		} else {
			a.At, a.NextCheck = now, now.Add(poll)
			a.Open, a.Message = r.askWebhook(ctx, p, s, bundleIn(pre.Status.Bundles, g.Bundle))
		}
		so := o.Stages[s.Name]
		so.Webhook = a
		o.Stages[s.Name] = so
	}
}

// lastWebhookCheck is when the stage's webhook last answered for the bundle, per the status.
func lastWebhookCheck(p *sluicev1beta1.Pipeline, stage, bundle string) *time.Time {
	st := statusOf(p, stage)
	if st == nil || st.Gate == nil || st.Gate.Bundle != bundle || st.Gate.Reason != sluicev1beta1.PipelineReasonWaitingForWebhook || st.Gate.LastWebhookCheck == nil {
		return nil
	}
	t := st.Gate.LastWebhookCheck.Time
	return &t
}

func bundleIn(bs []sluicev1beta1.Bundle, id string) *sluicev1beta1.Bundle {
	if i := slices.IndexFunc(bs, func(b sluicev1beta1.Bundle) bool { return b.ID == id }); i >= 0 {
		return &bs[i]
	}
	return nil
}

// askWebhook posts the gate's payload for bundle b: true on a 2xx; else
// false and why, bounded and without the URL's query (which may carry a token).
func (r *Reconciler) askWebhook(ctx context.Context, p *sluicev1beta1.Pipeline, s *sluicev1beta1.PipelineStage, b *sluicev1beta1.Bundle) (bool, string) {
	if b == nil {
		return false, "the bundle is no longer known"
	}
	log := ctrl.LoggerFrom(ctx).WithValues("stage", s.Name, "bundle", b.ID, "webhook", s.Webhook.Name)
	log.V(1).Info("Asking the webhook gate")
	err := r.webhookClient().Post(ctx, p.Namespace, s.Webhook.CanaryWebhook(), GatePayload(p, s, b))
	if err != nil {
		msg := truncate(withoutQuery(err.Error(), s.Webhook.URL), maxWebhookMessage)
		log.Info("The webhook gate stays closed", "answer", msg)
		return false, msg
	}
	log.Info("The webhook gate opened")
	return true, ""
}

// GatePayload is the payload of a stage's webhook gate for bundle b:
// Flagger's shape, as a Canary's confirm-promotion hook gets it, so that the
// load tester's /gate/check answers for the Pipeline (name, namespace).
func GatePayload(p *sluicev1beta1.Pipeline, s *sluicev1beta1.PipelineStage, b *sluicev1beta1.Bundle) webhooks.Payload {
	md := make(map[string]string, len(s.Webhook.Metadata)+3+len(b.Images))
	for k, v := range s.Webhook.Metadata {
		md[k] = v
	}
	// Sluice's keys win: a spec may not make the hook misread the bundle.
	md["pipeline"], md["stage"], md["bundle"] = p.Name, s.Name, b.ID
	for _, img := range b.Images {
		md["image."+img.Source] = img.Repository + ":" + img.Tag + "@" + img.Digest
	}
	return webhooks.Payload{
		Name: p.Name, Namespace: p.Namespace, Phase: sluicev1beta1.WebhookGatePhase,
		Checksum: b.ID, Revision: b.ID, Metadata: md, Type: sluicev1beta1.WebhookConfirmPromotion,
	}
}

// withoutQuery replaces the webhook's URL in msg (a connection error quotes
// it) by its scheme, host and path.
func withoutQuery(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.ReplaceAll(msg, raw, "<webhook url>")
	}
	safe := u.Scheme + "://" + u.Host + u.Path
	return strings.ReplaceAll(msg, raw, safe)
}

// webhookClient is r.Webhooks, or a client of its own made once that signs
// with the keys APIReader reads, for a reconciler built without one.
func (r *Reconciler) webhookClient() *webhooks.Client {
	r.hooksOnce.Do(func() {
		if r.Webhooks == nil {
			r.Webhooks = webhooks.New()
			r.Webhooks.Secret = webhooks.SecretFromReader(r.APIReader)
		}
	})
	return r.Webhooks
}
