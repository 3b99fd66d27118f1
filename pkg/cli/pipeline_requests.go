package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// stageRequest is a request on one stage of a Pipeline, carried by an
// annotation whose value is "<stage>/<bundle id>" (see pkg/promotion's
// requests.go): the controller handles each value once and records it in
// status.handledRequests.
type stageRequest struct {
	verb       string
	annotation string
	// pick chooses the bundle (flag value, or the default) and refuses
	// what the controller would reject, with a message that says why.
	pick func(p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, flag string) (string, error)
	// done says the bundle is already where the request would put it ("" when it is not).
	done func(st *sluicev1beta1.PipelineStageStatus, id string) string
	// handled reads the value the controller recorded as handled.
	handled func(*sluicev1beta1.PipelineHandledRequests) string
	// outcome reads the status after the request was handled: what
	// happened, and an error when the controller refused it.
	outcome func(p *sluicev1beta1.Pipeline, st *sluicev1beta1.PipelineStageStatus, id string) (string, error)
}

var (
	requestApprove = stageRequest{
		verb: "promote-stage", annotation: sluicev1beta1.PipelineApproveAnnotation,
		pick: pickApproval,
		done: func(st *sluicev1beta1.PipelineStageStatus, id string) string {
			if st != nil && slices.ContainsFunc(st.Approvals, func(a sluicev1beta1.StageApproval) bool { return a.Bundle == id }) {
				return "bundle " + id + " is already approved for stage " + st.Name
			}
			return ""
		},
		handled: func(h *sluicev1beta1.PipelineHandledRequests) string { return h.Approve },
		outcome: func(p *sluicev1beta1.Pipeline, st *sluicev1beta1.PipelineStageStatus, id string) (string, error) {
			if st == nil || !slices.ContainsFunc(st.Approvals, func(a sluicev1beta1.StageApproval) bool { return a.Bundle == id }) {
				return "", rejected(p, "approval", sluicev1beta1.PipelineReasonApprovalRejected)
			}
			return fmt.Sprintf("approved; stage %s is %s", st.Name, stageLine(st)), nil
		},
	}
	requestRollback = stageRequest{
		verb: "rollback-stage", annotation: sluicev1beta1.PipelineRollbackAnnotation,
		pick: pickRollback,
		done: func(st *sluicev1beta1.PipelineStageStatus, id string) string {
			if st != nil && st.Bundle == id && st.State == sluicev1beta1.StageVerified {
				return "stage " + st.Name + " already runs bundle " + id + " (Verified)"
			}
			return ""
		},
		handled: func(h *sluicev1beta1.PipelineHandledRequests) string { return h.RollbackTo },
		outcome: func(p *sluicev1beta1.Pipeline, st *sluicev1beta1.PipelineStageStatus, id string) (string, error) {
			switch {
			case st != nil && st.Bundle == id && st.Rollback:
				return fmt.Sprintf("rolling back; stage %s is %s", st.Name, stageLine(st)), nil
			case st != nil && st.Bundle == id && st.State == sluicev1beta1.StageVerified:
				return fmt.Sprintf("stage %s already runs bundle %s", st.Name, id), nil
			}
			return "", rejected(p, "rollback", sluicev1beta1.PipelineReasonRollbackRejected)
		},
	}
)

// rejected is the error of a request the controller handled without
// acting on it; it says where the controller said why.
func rejected(p *sluicev1beta1.Pipeline, what, reason string) error {
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("the controller refused the %s (event %s): kubectl events -n %s --for pipeline/%s",
		what, reason, p.Namespace, p.Name)}
}

// stageLine is "<state> with bundle <id>" for messages.
func stageLine(st *sluicev1beta1.PipelineStageStatus) string {
	state := string(st.State)
	if state == "" {
		state = "Pending"
	}
	if st.Reason != "" && st.Reason != sluicev1beta1.PipelineReasonProgressing && st.Reason != sluicev1beta1.PipelineReasonSucceeded {
		state += " (" + st.Reason + ")"
	}
	return state + " with bundle " + orDash(st.Bundle)
}

// hasBundle tells whether status.bundles still holds a bundle.
func hasBundle(p *sluicev1beta1.Pipeline, id string) bool {
	return slices.ContainsFunc(p.Status.Bundles, func(b sluicev1beta1.Bundle) bool { return b.ID == id })
}

// pickApproval approves --bundle, or the bundle waiting at the stage's
// manual gate; it refuses what the controller would reject.
func pickApproval(p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, flag string) (string, error) {
	if spec.Approval != sluicev1beta1.ApprovalManual {
		return "", fmt.Errorf("stage %s of pipeline %s/%s has no manual gate (approval: Automatic): its bundles need no approval", spec.Name, p.Namespace, p.Name)
	}
	id := flag
	if id == "" {
		switch {
		case st == nil || st.Gate == nil:
			return "", fmt.Errorf("no bundle waits for approval at stage %s of pipeline %s/%s (status.stages[].gate is empty); approve a given bundle with --bundle <id>", spec.Name, p.Namespace, p.Name)
		case st.Gate.Reason != sluicev1beta1.PipelineReasonWaitingForApproval:
			return "", fmt.Errorf("bundle %s waits at stage %s for %s, not for approval (%s); approve it ahead with --bundle %s", st.Gate.Bundle, spec.Name, st.Gate.Reason, oneLine(st.Gate.Message), st.Gate.Bundle)
		}
		id = st.Gate.Bundle
	}
	if !hasBundle(p, id) {
		return "", fmt.Errorf("pipeline %s/%s has no bundle %s in status.bundles: kubectl sluice status pipeline %s lists them", p.Namespace, p.Name, id, p.Name)
	}
	return id, nil
}

// pickRollback rolls back to --to, or to the newest bundle verified in the
// stage before its current one; only a bundle verified there is accepted.
func pickRollback(p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, flag string) (string, error) {
	if st == nil {
		return "", fmt.Errorf("stage %s of pipeline %s/%s has no bundle yet: there is nothing to roll back to", spec.Name, p.Namespace, p.Name)
	}
	if flag == "" {
		for i := len(st.History) - 1; i >= 0; i-- {
			if r := st.History[i]; r.State == sluicev1beta1.StageVerified && r.Bundle != st.Bundle && hasBundle(p, r.Bundle) {
				return r.Bundle, nil
			}
		}
		return "", fmt.Errorf("no earlier bundle was verified in stage %s of pipeline %s/%s (status.stages[].history): there is nothing to roll back to", spec.Name, p.Namespace, p.Name)
	}
	if !hasBundle(p, flag) {
		return "", fmt.Errorf("pipeline %s/%s has no bundle %s in status.bundles: kubectl sluice status pipeline %s lists them", p.Namespace, p.Name, flag, p.Name)
	}
	verified := (st.Bundle == flag && st.State == sluicev1beta1.StageVerified) ||
		slices.ContainsFunc(st.History, func(r sluicev1beta1.StageRecord) bool {
			return r.Bundle == flag && r.State == sluicev1beta1.StageVerified
		})
	if !verified {
		return "", fmt.Errorf("bundle %s was never verified in stage %s of pipeline %s/%s: a rollback only writes back a bundle that stage's Canary verified", flag, spec.Name, p.Namespace, p.Name)
	}
	return flag, nil
}

type stageRequestOptions struct {
	*Options
	req     stageRequest
	bundle  string
	wait    bool
	timeout time.Duration
}

func newPromoteStageCommand(o *Options) *cobra.Command {
	r := &stageRequestOptions{Options: o, req: requestApprove}
	cmd := &cobra.Command{
		Use:   "promote-stage PIPELINE STAGE",
		Short: "Approve the bundle waiting at a Pipeline stage's manual gate",
		Long: `promote-stage approves a bundle for a stage with approval: Manual by setting
the sluice.dev/approve annotation to "<stage>/<bundle id>". The bundle is the one
waiting at the stage's gate (status.stages[].gate.bundle) unless --bundle names
another. The approval lets that bundle through once (the other gates, a hold
and the promotion windows, still apply). With --wait it waits until the
controller records the request (status.handledRequests.approve).`,
		Example: "  kubectl sluice promote-stage web production -n sluice-system --wait",
		Args:    pipelineAndStage,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&r.bundle, "bundle", "", "Bundle id to approve (default: the bundle waiting at the stage's gate)")
	r.addWaitFlags(cmd)
	return cmd
}

func newRollbackStageCommand(o *Options) *cobra.Command {
	r := &stageRequestOptions{Options: o, req: requestRollback}
	cmd := &cobra.Command{
		Use:   "rollback-stage PIPELINE STAGE",
		Short: "Write back an earlier bundle verified in a Pipeline stage, through Git",
		Long: `rollback-stage asks the controller to write an earlier bundle to a stage by
setting the sluice.dev/rollback-to annotation to "<stage>/<bundle id>". The
bundle is --to, or by default the newest bundle verified in that stage before
its current one (status.stages[].history); a bundle never verified in the stage
is refused. The rollback passes the stage's gates and hold, and is committed
like every other change. With --wait it waits until the controller records the
request (status.handledRequests.rollbackTo).`,
		Example: "  kubectl sluice rollback-stage web production -n sluice-system --wait\n  kubectl sluice rollback-stage web production --to 3f2a9c0d1e4b5a67",
		Args:    pipelineAndStage,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&r.bundle, "to", "", "Bundle id to roll back to (default: the newest bundle verified in the stage before the current one)")
	r.addWaitFlags(cmd)
	return cmd
}

func (r *stageRequestOptions) addWaitFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&r.wait, "wait", false, "Wait until the controller records the request as handled (status.handledRequests); exit 1 if it refused it")
	cmd.Flags().DurationVar(&r.timeout, "timeout", time.Minute, "How long --wait waits (exit 2 when it passes)")
}

// pipelineAndStage rejects a missing or extra argument with a usable message.
func pipelineAndStage(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%s takes a PIPELINE and a STAGE (got %d arguments): e.g. kubectl sluice %s web production -n sluice-system", cmd.Name(), len(args), cmd.Name())
	}
	return nil
}

func (r *stageRequestOptions) run(ctx context.Context, name, stage string) error {
	if r.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive (got %s)", r.timeout)
	}
	p := &sluicev1beta1.Pipeline{}
	if err := r.getObject(ctx, "Pipeline", name, p); err != nil {
		return err
	}
	spec, st := stageOf(p, stage)
	if spec == nil {
		names := make([]string, 0, len(p.Spec.Stages))
		for _, s := range p.Spec.Stages {
			names = append(names, s.Name)
		}
		return fmt.Errorf("pipeline %s/%s has no stage %s: its stages are %s", p.Namespace, p.Name, stage, strings.Join(names, ", "))
	}
	id, err := r.req.pick(p, spec, st, r.bundle)
	if err != nil {
		return err
	}
	if msg := r.req.done(st, id); msg != "" {
		fmt.Fprintf(r.Streams.Out, "pipeline %s/%s: %s\n", p.Namespace, p.Name, msg)
		return nil
	}
	value := stage + "/" + id
	if h := p.Status.HandledRequests; h != nil && r.req.handled(h) == value {
		// The controller acts on a value once: the same value again would be ignored.
		return fmt.Errorf("the request %s=%s was already handled by the controller (status.handledRequests) and is not repeated: see kubectl events -n %s --for pipeline/%s",
			r.req.annotation, value, p.Namespace, p.Name)
	}
	if p.Spec.Suspend {
		fmt.Fprintf(r.Streams.ErrOut, "Warning: pipeline %s/%s is suspended: the request is handled once it is resumed\n", p.Namespace, p.Name)
	}
	// The resourceVersion makes the patch fail rather than overwrite a
	// request someone else set since the Pipeline was read.
	patch := map[string]any{"metadata": map[string]any{
		"resourceVersion": p.ResourceVersion,
		"annotations":     map[string]string{r.req.annotation: value},
	}}
	if err := r.patchPipeline(ctx, p, patch); err != nil {
		return err
	}
	fmt.Fprintf(r.Streams.Out, "pipeline %s/%s: %s requested (%s=%s)\n", p.Namespace, p.Name, r.req.verb, r.req.annotation, value)
	if !r.wait {
		return nil
	}
	return r.waitHandled(ctx, p, stage, id, value)
}

// patchPipeline applies a merge patch that carries the resourceVersion read.
func (r *stageRequestOptions) patchPipeline(ctx context.Context, p *sluicev1beta1.Pipeline, patch map[string]any) error {
	cl, err := r.Client()
	if err != nil {
		return err
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("failed to encode the patch: %w", err)
	}
	if err := cl.Patch(ctx, p, client.RawPatch(types.MergePatchType, data)); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("pipeline %s/%s changed while the request was prepared (someone may have sent another request): run the command again: %w", p.Namespace, p.Name, err)
		}
		return explain(err, "Pipeline", p.Namespace, p.Name)
	}
	return nil
}

// waitHandled polls until the controller records value as handled, then prints the outcome.
func (r *stageRequestOptions) waitHandled(ctx context.Context, p *sluicev1beta1.Pipeline, stage, id, value string) error {
	cl, err := r.Client()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(p)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, r.timeout, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, key, p); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return false, explain(err, "Pipeline", key.Namespace, key.Name)
			}
			return false, nil // transient: poll again until the timeout
		}
		return p.Status.HandledRequests != nil && r.req.handled(p.Status.HandledRequests) == value, nil
	})
	if err != nil {
		if wait.Interrupted(err) {
			return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("the %s request was not handled within %s: is the Sluice manager running with --enable-promotion?", r.req.verb, r.timeout)}
		}
		return err
	}
	_, st := stageOf(p, stage)
	msg, err := r.req.outcome(p, st, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Streams.Out, "pipeline %s/%s: %s\n", p.Namespace, p.Name, msg)
	return nil
}

// stageOf returns a stage's spec and status (nil when it has none yet).
func stageOf(p *sluicev1beta1.Pipeline, name string) (*sluicev1beta1.PipelineStage, *sluicev1beta1.PipelineStageStatus) {
	var spec *sluicev1beta1.PipelineStage
	for i := range p.Spec.Stages {
		if p.Spec.Stages[i].Name == name {
			spec = &p.Spec.Stages[i]
		}
	}
	for i := range p.Status.Stages {
		if p.Status.Stages[i].Name == name {
			return spec, &p.Status.Stages[i]
		}
	}
	return spec, nil
}
