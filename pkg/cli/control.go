package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// request is a manual-control annotation the engine reads.
type request struct {
	verb       string
	annotation string
	short      string
	long       string
	// allowed says why the engine would ignore the request in this state ("" when it acts on it).
	allowed func(*sluicev1beta1.Canary) string
	// handled reads the value the engine recorded as handled.
	handled func(*sluicev1beta1.HandledRequests) string
}

var (
	requestPromote = request{
		verb: "promote", annotation: sluicev1beta1.PromoteAnnotation,
		short: "Promote the revision under analysis now, skipping the remaining steps",
		long: `promote sets the sluice.dev/promote annotation to a new value (the current
time); the engine promotes the revision under analysis at its next reconcile,
once the canary is ready. It only applies while a release is Progressing or
WaitingPromotion: the engine settles and ignores a request made at any other time.`,
		allowed: func(c *sluicev1beta1.Canary) string {
			return analysing(c, "promote")
		},
		handled: func(h *sluicev1beta1.HandledRequests) string { return h.Promote },
	}
	requestAbort = request{
		verb: "abort", annotation: sluicev1beta1.AbortAnnotation,
		short: "Roll back the revision under analysis now",
		long: `abort sets the sluice.dev/abort annotation to a new value (the current time);
the engine rolls the revision under analysis back at its next reconcile (phase
Failed). It only applies while a release is Progressing or WaitingPromotion.`,
		allowed: func(c *sluicev1beta1.Canary) string {
			return analysing(c, "abort")
		},
		handled: func(h *sluicev1beta1.HandledRequests) string { return h.Abort },
	}
	requestRetry = request{
		verb: "retry", annotation: sluicev1beta1.RetryAnnotation,
		short: "Release again the revision that failed, without changing the workload",
		long: `retry sets the sluice.dev/retry annotation to a new value (the current time);
the engine starts a new release of the failed revision at its next reconcile.
It applies when the Canary is Failed, or Waiting with a failed revision pending.`,
		allowed: func(c *sluicev1beta1.Canary) string {
			p := c.Status.Phase
			failedPending := c.Status.LastAppliedSpec != c.Status.LastPromotedSpec
			if p == sluicev1beta1.CanaryPhaseFailed || (p == sluicev1beta1.CanaryPhaseWaiting && failedPending) {
				return ""
			}
			return fmt.Sprintf("canary %s/%s is %s, not Failed: there is no failed revision to retry", c.Namespace, c.Name, phaseName(p))
		},
		handled: func(h *sluicev1beta1.HandledRequests) string { return h.Retry },
	}
)

// phaseName is the phase, Pending before the first reconcile.
func phaseName(p sluicev1beta1.CanaryPhase) string {
	if p == "" {
		return "Pending"
	}
	return string(p)
}

// analysing explains why promote or abort cannot apply now ("" when it can).
func analysing(c *sluicev1beta1.Canary, verb string) string {
	p := c.Status.Phase
	if p == sluicev1beta1.CanaryPhaseProgressing || p == sluicev1beta1.CanaryPhaseWaitingPromotion {
		return ""
	}
	return fmt.Sprintf("canary %s/%s is %s: nothing is under analysis to %s (the request would be ignored); %s applies while Progressing or WaitingPromotion",
		c.Namespace, c.Name, phaseName(p), verb, verb)
}

type requestOptions struct {
	*Options
	req     request
	wait    bool
	timeout time.Duration
}

func newRequestCommand(o *Options, req request) *cobra.Command {
	r := &requestOptions{Options: o, req: req}
	cmd := &cobra.Command{
		Use:     req.verb + " NAME",
		Short:   req.short,
		Long:    req.long,
		Example: fmt.Sprintf("  kubectl sluice %s podinfo -n test --wait", req.verb),
		Args:    exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().BoolVar(&r.wait, "wait", false, "Wait until the engine records the request as handled (status.handledRequests)")
	cmd.Flags().DurationVar(&r.timeout, "timeout", time.Minute, "How long --wait waits (exit 2 when it passes)")
	return cmd
}

func (r *requestOptions) run(ctx context.Context, name string) error {
	if r.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive (got %s)", r.timeout)
	}
	c := &sluicev1beta1.Canary{}
	if err := r.getObject(ctx, "Canary", name, c); err != nil {
		return err
	}
	if why := r.req.allowed(c); why != "" {
		return errors.New(why)
	}
	if c.Spec.Suspend {
		fmt.Fprintf(r.Streams.ErrOut, "Warning: canary %s/%s is suspended: the request is handled once it is resumed (kubectl sluice resume %s)\n", c.Namespace, c.Name, c.Name)
	}
	value := r.Now().UTC().Format(time.RFC3339Nano)
	if err := r.annotate(ctx, c, r.req.annotation, value); err != nil {
		return err
	}
	fmt.Fprintf(r.Streams.Out, "canary %s/%s: %s requested (%s=%s)\n", c.Namespace, c.Name, r.req.verb, r.req.annotation, value)
	if !r.wait {
		return nil
	}
	cl, err := r.Client()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(c)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, r.timeout, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, key, c); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return false, explain(err, "Canary", key.Namespace, key.Name)
			}
			return false, nil // transient: poll again until the timeout
		}
		return c.Status.HandledRequests != nil && r.req.handled(c.Status.HandledRequests) == value, nil
	})
	if err != nil {
		if wait.Interrupted(err) {
			return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("the %s request was not handled within %s: is the Sluice manager running? (phase %s)", r.req.verb, r.timeout, phaseName(c.Status.Phase))}
		}
		return err
	}
	fmt.Fprintf(r.Streams.Out, "canary %s/%s: %s handled, phase %s\n", c.Namespace, c.Name, r.req.verb, phaseName(c.Status.Phase))
	return nil
}

// annotate sets one annotation with a merge patch (no conflict with the controller).
func (o *Options) annotate(ctx context.Context, obj client.Object, key, value string) error {
	return o.mergePatch(ctx, obj, map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
}

// mergePatch applies a JSON merge patch to an object.
func (o *Options) mergePatch(ctx context.Context, obj client.Object, patch map[string]any) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("failed to encode the patch: %w", err)
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		kind := "Canary"
		if _, ok := obj.(*sluicev1beta1.GitSync); ok {
			kind = "GitSync"
		}
		return explain(err, kind, obj.GetNamespace(), obj.GetName())
	}
	return nil
}

func newSuspendCommand(o *Options, suspend bool) *cobra.Command {
	verb, short := "resume", "Resume a suspended Canary (default) or GitSync"
	if suspend {
		verb, short = "suspend", "Suspend a Canary (default) or GitSync: no release starts or advances, no sync runs"
	}
	return &cobra.Command{
		Use:   verb + " [canary|gitsync] NAME",
		Short: short,
		Long: short + `.
It sets spec.suspend. A suspended Canary keeps its traffic where it is; a
suspended GitSync leaves the applied objects as they are.`,
		Example: fmt.Sprintf("  kubectl sluice %s podinfo -n test\n  kubectl sluice %s gitsync apps -n sluice", verb, verb),
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, name := resourceCanary, args[0]
			if len(args) == 2 {
				r, err := resourceOf(args[0])
				if err != nil {
					return err
				}
				res, name = r, args[1]
			}
			return o.setSuspend(cmd.Context(), res, name, suspend)
		},
	}
}

func (o *Options) setSuspend(ctx context.Context, res resource, name string, suspend bool) error {
	var obj client.Object = &sluicev1beta1.Canary{}
	kind, current := "Canary", func() bool { return obj.(*sluicev1beta1.Canary).Spec.Suspend }
	if res == resourceGitSync {
		obj = &sluicev1beta1.GitSync{}
		kind, current = "GitSync", func() bool { return obj.(*sluicev1beta1.GitSync).Spec.Suspend }
	}
	if err := o.getObject(ctx, kind, name, obj); err != nil {
		return err
	}
	state := map[bool]string{true: "suspended", false: "resumed"}[suspend]
	if current() == suspend {
		fmt.Fprintf(o.Streams.Out, "%s %s/%s is already %s\n", kind, obj.GetNamespace(), name, state)
		return nil
	}
	if err := o.mergePatch(ctx, obj, map[string]any{"spec": map[string]any{"suspend": suspend}}); err != nil {
		return err
	}
	fmt.Fprintf(o.Streams.Out, "%s %s/%s %s\n", kind, obj.GetNamespace(), name, state)
	return nil
}

type syncOptions struct {
	*Options
	wait    bool
	timeout time.Duration
}

func newSyncCommand(o *Options) *cobra.Command {
	so := &syncOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Ask a GitSync to fetch, build and apply now, whatever its interval",
		Long: `sync sets the sluice.dev/sync-requested-at annotation of a GitSync to the
current time; the controller reconciles on the change and syncs at once. With
--wait it waits until status.lastHandledSyncRequest records the request, and
exits 1 when that sync failed.`,
		Example: "  kubectl sluice sync apps -n sluice --wait",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("sync takes exactly one GitSync NAME (got %d arguments): e.g. kubectl sluice sync apps -n sluice", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return so.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().BoolVar(&so.wait, "wait", false, "Wait until the controller records the sync (status.lastHandledSyncRequest); exit 1 if it failed")
	cmd.Flags().DurationVar(&so.timeout, "timeout", 2*time.Minute, "How long --wait waits (exit 2 when it passes)")
	return cmd
}

func (so *syncOptions) run(ctx context.Context, name string) error {
	if so.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive (got %s)", so.timeout)
	}
	gs := &sluicev1beta1.GitSync{}
	if err := so.getObject(ctx, "GitSync", name, gs); err != nil {
		return err
	}
	if gs.Spec.Suspend {
		return fmt.Errorf("gitsync %s/%s is suspended, so it does not sync: resume it first (kubectl sluice resume gitsync %s)", gs.Namespace, gs.Name, gs.Name)
	}
	value := so.Now().UTC().Format(time.RFC3339Nano)
	if err := so.annotate(ctx, gs, sluicev1beta1.GitSyncSyncRequestedAnnotation, value); err != nil {
		return err
	}
	fmt.Fprintf(so.Streams.Out, "gitsync %s/%s: sync requested (%s=%s)\n", gs.Namespace, gs.Name, sluicev1beta1.GitSyncSyncRequestedAnnotation, value)
	if !so.wait {
		return nil
	}
	cl, err := so.Client()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(gs)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, so.timeout, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, key, gs); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return false, explain(err, "GitSync", key.Namespace, key.Name)
			}
			return false, nil // transient: poll again until the timeout
		}
		return gs.Status.LastHandledSyncRequest == value, nil
	})
	if err != nil {
		if wait.Interrupted(err) {
			return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("the sync of gitsync %s/%s was not done within %s: is the Sluice manager running? (the controller records it in status.lastHandledSyncRequest)", key.Namespace, key.Name, so.timeout)}
		}
		return err
	}
	if st := gs.Status; st.LastFailureReason != "" {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("the sync of gitsync %s/%s failed (%s): %s", key.Namespace, key.Name, st.LastFailureReason, oneLine(st.LastFailureMessage))}
	}
	fmt.Fprintf(so.Streams.Out, "gitsync %s/%s: synced, applied revision %s\n", key.Namespace, key.Name, orDash(gs.Status.LastAppliedRevision))
	return nil
}
