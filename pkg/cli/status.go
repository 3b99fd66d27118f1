package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// actionFailed is the Ready reason of a Canary whose last action failed
// (pkg/canary.ActionFailedReason; the CLI does not import the engine).
const actionFailed = "ActionFailed"

// observeFailed is the Ready reason of a Canary the engine cannot read what
// it must observe for (pkg/canary.ObserveFailedReason).
const observeFailed = "ObserveFailed"

type statusOptions struct {
	*Options
	output string
}

func newStatusCommand(o *Options) *cobra.Command {
	s := &statusOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "status [pipeline] NAME",
		Short: "Explain a Canary (its release, conditions and step history with every check) or a Pipeline (its stages and bundles)",
		Example: `  kubectl sluice status podinfo -n test
  kubectl sluice status podinfo -o json | jq '.status.history[-1].checks'
  kubectl sluice status pipeline web -n sluice-system`,
		Args: canaryOrPipelineName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return s.runPipeline(cmd.Context(), args[1])
			}
			return s.run(cmd.Context(), args[0])
		},
	}
	addOutputFlag(cmd, &s.output)
	return cmd
}

// exactlyOneName rejects a missing or extra NAME with a usable message.
func exactlyOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes exactly one Canary NAME (got %d arguments): e.g. kubectl sluice %s podinfo -n test", cmd.Name(), len(args), cmd.Name())
	}
	return nil
}

func (s *statusOptions) run(ctx context.Context, name string) error {
	if err := checkOutput(s.output); err != nil {
		return err
	}
	c := &sluicev1beta1.Canary{}
	if err := s.getObject(ctx, "Canary", name, c); err != nil {
		return err
	}
	if s.output != outputTable {
		return s.printObject(s.Streams.Out, s.output, c)
	}
	return s.describe(s.Streams.Out, c)
}

// describe writes the human view of a Canary.
func (s *statusOptions) describe(w io.Writer, c *sluicev1beta1.Canary) error {
	st := &c.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = "Pending (not reconciled yet: is the Sluice manager running?)"
	}
	provider := c.Spec.Provider
	if provider == "" {
		provider = "the controller's --default-provider"
	}
	fmt.Fprintf(w, "Canary:         %s/%s\n", c.Namespace, c.Name)
	fmt.Fprintf(w, "Target:         %s %s\n", c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name)
	fmt.Fprintf(w, "Provider:       %s\n", provider)
	fmt.Fprintf(w, "Strategy:       %s\n", strategyOf(c))
	fmt.Fprintf(w, "Phase:          %s (since %s)\n", phase, s.ago(st.LastTransitionTime))
	if cond := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == actionFailed {
		// The release is stuck on an action the engine cannot carry out
		// (RBAC, a missing CRD): say so first, the phase alone hides it.
		fmt.Fprintf(w, "Action failed:  %s (since %s)\n", oneLine(cond.Message), s.age(cond.LastTransitionTime))
	}
	if cond := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition); cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == observeFailed {
		// The engine cannot read the target, its routes or configs: the
		// release holds where it is until it can.
		fmt.Fprintf(w, "Observe failed: %s (since %s)\n", oneLine(cond.Message), s.age(cond.LastTransitionTime))
	}
	if c.Spec.Suspend {
		fmt.Fprintf(w, "Suspended:      true (kubectl sluice resume %s)\n", c.Name)
	}
	if n := iterationsOf(c); n > 0 {
		fmt.Fprintf(w, "Weight:         %d%%\n", st.CanaryWeight)
		fmt.Fprintf(w, "Iterations:     %d/%d\n", st.Iterations, n)
	} else {
		fmt.Fprintf(w, "Weight:         %d%% (max %d%%)\n", st.CanaryWeight, maxWeight(c))
	}
	fmt.Fprintf(w, "Failed checks:  %d/%d\n", st.FailedChecks, c.Threshold())
	fmt.Fprintf(w, "Revision:       %s\n", orDash(st.Revision))
	fmt.Fprintf(w, "Last step:      %s (interval %s)\n", s.ago(st.LastStepTime), c.AnalysisInterval())
	if h := st.HandledRequests; h != nil && (h.Promote != "" || h.Abort != "" || h.Retry != "") {
		fmt.Fprintf(w, "Handled requests: promote=%s abort=%s retry=%s\n", orDash(h.Promote), orDash(h.Abort), orDash(h.Retry))
	}
	if err := s.conditions(w, st.Conditions); err != nil {
		return err
	}
	return s.history(w, st.History)
}

func (s *statusOptions) conditions(w io.Writer, conds []metav1.Condition) error {
	fmt.Fprintln(w, "\nConditions:")
	if len(conds) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	t := newTable(w, "  TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
	for _, cond := range conds {
		t.row("  "+cond.Type, string(cond.Status), orDash(cond.Reason), s.age(cond.LastTransitionTime), oneLine(cond.Message))
	}
	return t.flush()
}

func (s *statusOptions) history(w io.Writer, steps []sluicev1beta1.CanaryStep) error {
	fmt.Fprintln(w, "\nHistory (oldest first):")
	if len(steps) == 0 {
		fmt.Fprintln(w, "  no analysis step yet")
		return nil
	}
	for i, step := range steps {
		fmt.Fprintf(w, "  #%d %s (%s)  %s  weight %d%%  iteration %d\n", i+1, timestamp(step.Time.Time),
			s.ago(&step.Time), step.Phase, step.Weight, step.Iteration)
		if step.Message != "" {
			fmt.Fprintf(w, "     %s\n", oneLine(step.Message))
		}
		if len(step.Checks) == 0 {
			continue
		}
		t := newTable(w, "     KIND", "NAME", "OUTCOME", "VALUE", "MESSAGE")
		for _, ch := range step.Checks {
			t.row("     "+ch.Kind, ch.Name, outcomeOf(ch), valueOf(ch), checkMessage(ch))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// outcomeOf is the outcome, marked when it held the step or when it was a
// dry run (recorded, never deciding).
func outcomeOf(ch sluicev1beta1.CheckResult) string {
	switch {
	case ch.Held:
		return string(ch.Outcome) + " (held)"
	case ch.DryRun:
		return string(ch.Outcome) + " (dry run)"
	}
	return string(ch.Outcome)
}

func valueOf(ch sluicev1beta1.CheckResult) string {
	if ch.Value == nil {
		return "-" + compared(ch)
	}
	return *ch.Value + compared(ch)
}

// compared is what a compared metric measured on the other side, next to
// the canary's value: " vs primary 98 (p=0.003)"; "" for other checks.
func compared(ch sluicev1beta1.CheckResult) string {
	if ch.ComparedAgainst == "" {
		return ""
	}
	out := " vs " + ch.ComparedAgainst
	if ch.ComparedValue != nil {
		out += " " + *ch.ComparedValue
	}
	if ch.PValue != nil {
		out += " (p=" + *ch.PValue + ")"
	}
	return out
}

// checkMessage is the message with the machine reason in front.
func checkMessage(ch sluicev1beta1.CheckResult) string {
	msg := oneLine(ch.Message)
	if ch.Reason != "" {
		msg = ch.Reason + ": " + msg
	}
	return orDash(msg)
}

// strategyOf names the strategy the analysis shape selects.
func strategyOf(c *sluicev1beta1.Canary) string {
	st := string(c.Strategy(c.Spec.Provider))
	if a := c.Spec.Analysis; a != nil {
		if a.Mirror {
			st += " with mirroring"
		}
		if a.SessionAffinity != nil {
			st += " with session affinity"
		}
	}
	return st
}

// maxWeight is the highest canary weight of the analysis.
func maxWeight(c *sluicev1beta1.Canary) int32 {
	a := c.Spec.Analysis
	switch {
	case a == nil:
		return 100
	case len(a.StepWeights) > 0:
		return a.StepWeights[len(a.StepWeights)-1]
	case a.MaxWeight > 0:
		return a.MaxWeight
	}
	return 100
}

// iterationsOf is the number of iterations of a blue/green or A/B release, or 0.
func iterationsOf(c *sluicev1beta1.Canary) int32 {
	return c.Iterations(c.Spec.Provider)
}

// checksLine summarises the checks of a step: "name=value Outcome, ...".
func checksLine(checks []sluicev1beta1.CheckResult) string {
	parts := make([]string, 0, len(checks))
	for _, ch := range checks {
		p := ch.Name
		if ch.Value != nil || ch.ComparedAgainst != "" {
			p += "=" + valueOf(ch)
		}
		parts = append(parts, p+" "+outcomeOf(ch))
	}
	return strings.Join(parts, ", ")
}
