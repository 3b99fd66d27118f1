package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

type watchOptions struct {
	*Options
	timeout   time.Duration
	waitStart bool
}

func newWatchCommand(o *Options) *cobra.Command {
	wo := &watchOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a Canary's release until it ends; exit 1 if it fails or stalls",
		Long: `watch shows a progress bar of the canary weight (or of the iterations of a
blue/green or A/B release) and the latest checks, until the phase is terminal:
Succeeded, Initialized (exit 0), Failed (exit 1). A Stalled Canary, or one being
deleted, also exits 1; --timeout passing first exits 2. CI can wait on it.`,
		Example: `  kubectl sluice watch podinfo -n test --timeout 15m`,
		Args:    exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return wo.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().DurationVar(&wo.timeout, "timeout", 0, "Give up (exit 2) after this long, e.g. 10m; 0 waits forever")
	cmd.Flags().BoolVar(&wo.waitStart, "wait-start", false,
		"Ignore the terminal phase of the previous release until a new one starts (use right after changing the target, e.g. in CI)")
	return cmd
}

// errWatchGone ends a watch whose object was deleted.
var errWatchGone = errors.New("the Canary was deleted")

func (wo *watchOptions) run(ctx context.Context, name string) error {
	if wo.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative (got %s)", wo.timeout)
	}
	c, err := wo.Client()
	if err != nil {
		return err
	}
	ns, err := wo.Namespace()
	if err != nil {
		return err
	}
	if wo.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wo.timeout)
		defer cancel()
	}
	p := &progress{w: wo.Streams.Out, tty: isTerminal(wo.Streams.Out)}
	var last *sluicev1beta1.Canary
	started := !wo.waitStart
	err = watchCanary(ctx, c, ns, name, func(cn *sluicev1beta1.Canary) (bool, error) {
		last = cn
		p.show(renderProgress(cn))
		done, err := ended(cn)
		if !started && done && isTerminalPhase(cn.Status.Phase) && !isStalled(cn) && cn.DeletionTimestamp == nil {
			return false, nil // the previous release's end: wait for a new one
		}
		started = started || !done
		return done, err
	})
	p.done()
	switch {
	case err == nil:
		fmt.Fprintf(wo.Streams.Out, "Canary %s/%s %s: %s\n", ns, name, last.Status.Phase, successMessage(last))
		return nil
	case wo.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		phase := "not found"
		if last != nil {
			phase = string(last.Status.Phase)
		}
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for Canary %s/%s to finish (phase %s)", wo.timeout, ns, name, phase)}
	case errors.Is(err, errWatchGone):
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("canary %s/%s was deleted while watching", ns, name)}
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("stopped watching canary %s/%s: %w", ns, name, ctx.Err())
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return explain(err, "Canary", ns, name)
}

// ended tells whether a watch ends at this state: nil error for success, an
// ExitError for a failed, stalled or deleted Canary.
func ended(c *sluicev1beta1.Canary) (bool, error) {
	if c.DeletionTimestamp != nil {
		return true, &ExitError{Code: ExitFailed, Err: fmt.Errorf("canary %s/%s is being deleted (phase %s)", c.Namespace, c.Name, c.Status.Phase)}
	}
	// A rolled-back release is also Stalled (kstatus reads it as Failed); say
	// "failed" with the outcome, which names the reason the user acts on.
	if c.Status.Phase == sluicev1beta1.CanaryPhaseFailed {
		return true, &ExitError{Code: ExitFailed, Err: fmt.Errorf("canary %s/%s failed: %s", c.Namespace, c.Name, outcomeMessage(c))}
	}
	if isStalled(c) {
		cond := apimeta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.StalledCondition)
		return true, &ExitError{Code: ExitFailed, Err: fmt.Errorf("canary %s/%s is stalled (%s): %s", c.Namespace, c.Name, cond.Reason, cond.Message)}
	}
	switch c.Status.Phase {
	case sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseInitialized:
		return true, nil
	}
	return false, nil
}

// isStalled tells whether the Canary is Stalled for its current spec.
func isStalled(c *sluicev1beta1.Canary) bool {
	cond := apimeta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.StalledCondition)
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration >= c.Generation
}

// isTerminalPhase tells whether no release is running in this phase.
func isTerminalPhase(p sluicev1beta1.CanaryPhase) bool {
	return p == sluicev1beta1.CanaryPhaseSucceeded || p == sluicev1beta1.CanaryPhaseFailed || p == sluicev1beta1.CanaryPhaseInitialized
}

// successMessage is what the Promoted (else Ready) condition says.
func successMessage(c *sluicev1beta1.Canary) string {
	for _, t := range []string{sluicev1beta1.PromotedCondition, sluicev1beta1.ReadyCondition} {
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, t); cond != nil && cond.Message != "" {
			return oneLine(cond.Message)
		}
	}
	return "no message"
}

// outcomeMessage explains how a release ended: the last step's message and
// its failed checks, else the Ready condition's message.
func outcomeMessage(c *sluicev1beta1.Canary) string {
	if n := len(c.Status.History); n > 0 {
		step := c.Status.History[n-1]
		var failed []string
		for _, ch := range step.Checks {
			if ch.Outcome != sluicev1beta1.CheckPassed && ch.Outcome != sluicev1beta1.CheckSkipped {
				failed = append(failed, fmt.Sprintf("%s (%s) %s: %s", ch.Name, ch.Kind, ch.Outcome, oneLine(ch.Message)))
			}
		}
		if step.Message != "" || len(failed) > 0 {
			return strings.TrimPrefix(oneLine(step.Message)+"; "+strings.Join(failed, "; "), "; ")
		}
	}
	for _, t := range []string{sluicev1beta1.ReadyCondition, sluicev1beta1.ProgressingCondition} {
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, t); cond != nil && cond.Message != "" {
			return oneLine(cond.Message)
		}
	}
	return "no message"
}

// watchCanary calls fn with the Canary now and at every change, until fn
// says done, the Canary is deleted, or ctx ends. A watch the server closes is
// re-established from the last resourceVersion seen.
func watchCanary(ctx context.Context, c client.WithWatch, ns, name string, fn func(*sluicev1beta1.Canary) (bool, error)) error {
	sel := client.MatchingFields{"metadata.name": name}
	for {
		list := &sluicev1beta1.CanaryList{}
		if err := c.List(ctx, list, client.InNamespace(ns), sel); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sluicev1beta1.Canary{}); err != nil {
				return err // NotFound, explained by the caller
			}
			continue // created between the List and the Get
		}
		if done, err := fn(&list.Items[0]); done || err != nil {
			return err
		}
		rv := list.ResourceVersion
		for {
			w, err := c.Watch(ctx, &sluicev1beta1.CanaryList{}, client.InNamespace(ns), sel,
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				return err
			}
			next, done, err := drain(ctx, w, fn)
			w.Stop()
			if done || err != nil {
				return err
			}
			if next == "" {
				break // expired: list again
			}
			rv = next
		}
	}
}

// drain reads watch events until the watch closes; it returns the last
// resourceVersion seen ("" when the watch expired and must be listed again).
func drain(ctx context.Context, w watch.Interface, fn func(*sluicev1beta1.Canary) (bool, error)) (string, bool, error) {
	rv := ""
	for {
		select {
		case <-ctx.Done():
			return "", true, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, false, nil
			}
			switch ev.Type {
			case watch.Error:
				return "", false, nil
			case watch.Deleted:
				return "", true, errWatchGone
			case watch.Bookmark:
				if obj, ok := ev.Object.(client.Object); ok {
					rv = obj.GetResourceVersion()
				}
				continue
			}
			cn, ok := ev.Object.(*sluicev1beta1.Canary)
			if !ok {
				continue
			}
			rv = cn.ResourceVersion
			if done, err := fn(cn); done || err != nil {
				return rv, true, err
			}
		}
	}
}

// renderProgress is one line: phase, a bar, and the latest checks.
func renderProgress(c *sluicev1beta1.Canary) string {
	st := &c.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = "Pending"
	}
	var bar string
	if n := iterationsOf(c); n > 0 {
		bar = fmt.Sprintf("%s iteration %d/%d weight %d%%", progressBar(st.Iterations, n), st.Iterations, n, st.CanaryWeight)
	} else {
		bar = fmt.Sprintf("%s weight %d%%/%d%%", progressBar(st.CanaryWeight, maxWeight(c)), st.CanaryWeight, maxWeight(c))
	}
	line := fmt.Sprintf("%-16s %s  failed %d/%d", phase, bar, st.FailedChecks, c.Threshold())
	if n := len(st.History); n > 0 && len(st.History[n-1].Checks) > 0 {
		line += "  checks: " + checksLine(st.History[n-1].Checks)
	}
	if c.Spec.Suspend {
		line += "  (suspended)"
	}
	return line
}

// progressBar draws done out of total in 20 cells.
func progressBar(done, total int32) string {
	const width = 20
	if total <= 0 {
		total = 100
	}
	n := int(done) * width / int(total)
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// progress prints a line per change, or redraws one line on a terminal.
type progress struct {
	w    io.Writer
	tty  bool
	last string
}

func (p *progress) show(line string) {
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) done() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
