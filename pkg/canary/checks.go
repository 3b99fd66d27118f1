package canary

import (
	"context"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// WebhookCaller calls one webhook; nil means the hook said yes (2xx).
// pkg/webhooks implements it.
type WebhookCaller interface {
	Call(ctx context.Context, c *sluicev1beta1.Canary, hook sluicev1beta1.CanaryWebhook, phase sluicev1beta1.CanaryPhase) error
}

// MetricChecker runs one metric check of a Canary. pkg/metrics implements it.
// The metrics of a step are checked concurrently: Check must be safe for
// concurrent use.
type MetricChecker interface {
	Check(ctx context.Context, c *sluicev1beta1.Canary, provider string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult
}

// hooksOf returns the webhooks of a type.
func hooksOf(c *sluicev1beta1.Canary, kind string) []sluicev1beta1.CanaryWebhook {
	if c.Spec.Analysis == nil {
		return nil
	}
	var out []sluicev1beta1.CanaryWebhook
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.TypeOrDefault() == kind {
			out = append(out, h)
		}
	}
	return out
}

// runChecks runs what Decide asked for.
func (r *CanaryReconciler) runChecks(ctx context.Context, s *scope, req *CheckRequest) *CheckResults {
	c := s.canary
	res := &CheckResults{GatesOpen: map[string]bool{}}
	phase := c.Status.Phase
	for _, gate := range req.Gates {
		open := true
		for _, h := range hooksOf(c, gate) {
			if err := r.Webhooks.Call(ctx, c, h, phase); err != nil {
				open = false
				break
			}
		}
		res.GatesOpen[gate] = open
	}
	if req.Rollback {
		for _, h := range hooksOf(c, sluicev1beta1.WebhookRollback) {
			if r.Webhooks.Call(ctx, c, h, phase) == nil {
				res.RollbackRequested = true
				return res
			}
		}
	}
	if req.Analysis == "" {
		return res
	}
	for _, h := range hooksOf(c, req.Analysis) {
		out := sluicev1beta1.CheckResult{Name: h.Name, Kind: "webhook", Outcome: sluicev1beta1.CheckPassed}
		if err := r.Webhooks.Call(ctx, c, h, sluicev1beta1.CanaryPhaseProgressing); err != nil {
			out.Outcome, out.Message = sluicev1beta1.CheckFailed, truncate(err.Error(), 1024)
		}
		res.Checks = append(res.Checks, out)
	}
	if req.Analysis == sluicev1beta1.WebhookRollout && c.Spec.Analysis != nil {
		res.Checks = append(res.Checks, r.checkMetrics(ctx, s, req.Delayed)...)
	}
	return res
}

// runPostRollout calls the post-rollout webhooks; their failures are
// events, sent with the transition's once its status patch succeeded.
func (r *CanaryReconciler) runPostRollout(ctx context.Context, s *scope, phase sluicev1beta1.CanaryPhase) []Event {
	var events []Event
	for _, h := range hooksOf(s.canary, sluicev1beta1.WebhookPostRollout) {
		if err := r.Webhooks.Call(ctx, s.canary, h, phase); err != nil {
			events = append(events, Event{Warning: true, Reason: "PostRolloutFailed", Message: err.Error()})
		}
	}
	return events
}
