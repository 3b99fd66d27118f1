package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// runPipelines is `get pipelines [NAME]`.
func (g *getOptions) runPipelines(ctx context.Context, name string) error {
	if name != "" {
		p := &sluicev1beta1.Pipeline{}
		if err := g.getObject(ctx, "Pipeline", name, p); err != nil {
			return err
		}
		if g.output != outputTable {
			return g.printObject(g.Streams.Out, g.output, p)
		}
		return g.pipelineTable([]sluicev1beta1.Pipeline{*p})
	}
	c, err := g.Client()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	ns := ""
	if !g.allNamespaces {
		if ns, err = g.Namespace(); err != nil {
			return err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	list := &sluicev1beta1.PipelineList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return explain(err, "Pipeline", orDash(ns), "(list)")
	}
	if g.output != outputTable {
		return g.printObject(g.Streams.Out, g.output, list)
	}
	if len(list.Items) == 0 {
		where := "in namespace " + ns
		if g.allNamespaces {
			where = "in any namespace"
		}
		fmt.Fprintf(g.Streams.ErrOut, "No pipelines found %s.\n", where)
		return nil
	}
	return g.pipelineTable(list.Items)
}

// pipelineTable prints NAMESPACE (with -A), NAME, READY, STAGES, AGE, MESSAGE;
// STAGES is each stage's state and the tags of its bundle, in order.
func (g *getOptions) pipelineTable(items []sluicev1beta1.Pipeline) error {
	header := []string{"NAME", "READY", "STAGES", "AGE", "MESSAGE"}
	if g.allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	t := newTable(g.Streams.Out, header...)
	for i := range items {
		p := &items[i]
		ready, msg := "Unknown", ""
		if cond := apimeta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition); cond != nil {
			ready, msg = string(cond.Status), cond.Message
		}
		if p.Spec.Suspend {
			ready += " (suspended)"
		}
		row := []string{p.Name, ready, stagesSummary(p), g.age(p.CreationTimestamp), oneLine(msg)}
		if g.allNamespaces {
			row = append([]string{p.Namespace}, row...)
		}
		t.row(row...)
	}
	return t.flush()
}

// stagesSummary is "dev=1.1.0:Verified,production=-:-", one entry per stage of the spec.
func stagesSummary(p *sluicev1beta1.Pipeline) string {
	parts := make([]string, 0, len(p.Spec.Stages))
	for _, spec := range p.Spec.Stages {
		_, st := stageOf(p, spec.Name)
		tags, state := "-", "-"
		if st != nil {
			tags, state = orDash(bundleTags(p, st.Bundle)), orDash(string(st.State))
			if st.Gate != nil {
				state += "+" + st.Gate.Reason
			}
		}
		parts = append(parts, spec.Name+"="+tags+":"+state)
	}
	return strings.Join(parts, ",")
}

// bundleTags is the tags of a bundle's images joined by "/", or its id when it is unknown.
func bundleTags(p *sluicev1beta1.Pipeline, id string) string {
	b := bundleOf(p, id)
	if b == nil {
		return id
	}
	tags := make([]string, 0, len(b.Images))
	for _, im := range b.Images {
		tags = append(tags, im.Tag)
	}
	return strings.Join(tags, "/")
}

func bundleOf(p *sluicev1beta1.Pipeline, id string) *sluicev1beta1.Bundle {
	for i := range p.Status.Bundles {
		if p.Status.Bundles[i].ID == id {
			return &p.Status.Bundles[i]
		}
	}
	return nil
}

// bundleImages is "web=ghcr.io/org/web:1.1.0, api=…" (tags for people; the digests are in the bundles list).
func bundleImages(p *sluicev1beta1.Pipeline, id string) string {
	b := bundleOf(p, id)
	if b == nil {
		return "(no longer in status.bundles)"
	}
	parts := make([]string, 0, len(b.Images))
	for _, im := range b.Images {
		parts = append(parts, im.Source+"="+im.Repository+":"+im.Tag)
	}
	return strings.Join(parts, ", ")
}

// isPipelineWord tells whether a word names the Pipeline kind.
func isPipelineWord(s string) bool {
	r, err := resourceOf(s)
	return err == nil && r == resourcePipeline
}

// canaryOrPipelineName accepts "NAME" (a Canary) or "pipeline NAME".
func canaryOrPipelineName(cmd *cobra.Command, args []string) error {
	if len(args) == 2 && isPipelineWord(args[0]) {
		return nil
	}
	if len(args) == 2 {
		return fmt.Errorf("%s takes one Canary NAME, or pipeline NAME (got %q %q): e.g. kubectl sluice %s pipeline web -n sluice-system", cmd.Name(), args[0], args[1], cmd.Name())
	}
	return exactlyOneName(cmd, args)
}

// runPipeline is `status pipeline NAME`.
func (s *statusOptions) runPipeline(ctx context.Context, name string) error {
	if err := checkOutput(s.output); err != nil {
		return err
	}
	p := &sluicev1beta1.Pipeline{}
	if err := s.getObject(ctx, "Pipeline", name, p); err != nil {
		return err
	}
	if s.output != outputTable {
		return s.printObject(s.Streams.Out, s.output, p)
	}
	return s.describePipeline(s.Streams.Out, p)
}

// describePipeline writes the human view of a Pipeline: each stage in
// order, then the bundles and the conditions. Times are absolute so that
// the view reads the same in a log or a ticket.
func (s *statusOptions) describePipeline(w io.Writer, p *sluicev1beta1.Pipeline) error {
	fmt.Fprintf(w, "Pipeline:  %s/%s\n", p.Namespace, p.Name)
	ready := "Unknown (not reconciled yet: is the Sluice manager running with --enable-promotion?)"
	if cond := apimeta.FindStatusCondition(p.Status.Conditions, sluicev1beta1.ReadyCondition); cond != nil {
		ready = fmt.Sprintf("%s (%s) %s", cond.Status, cond.Reason, oneLine(cond.Message))
	}
	fmt.Fprintf(w, "Ready:     %s\n", ready)
	if p.Spec.Suspend {
		fmt.Fprintf(w, "Suspended: true (spec.suspend): nothing is scanned or promoted\n")
	}
	sources := make([]string, 0, len(p.Spec.Sources))
	for _, src := range p.Spec.Sources {
		sources = append(sources, src.Name+"="+src.Image)
	}
	fmt.Fprintf(w, "Sources:   %s\n", strings.Join(sources, ", "))
	for i := range p.Spec.Stages {
		if err := s.describeStage(w, p, &p.Spec.Stages[i]); err != nil {
			return err
		}
	}
	if err := s.bundles(w, p); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nConditions:")
	if len(p.Status.Conditions) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	t := newTable(w, "  TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
	for _, c := range p.Status.Conditions {
		t.row("  "+c.Type, string(c.Status), orDash(c.Reason), timestamp(c.LastTransitionTime.Time), oneLine(c.Message))
	}
	return t.flush()
}

func (s *statusOptions) describeStage(w io.Writer, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage) error {
	_, st := stageOf(p, spec.Name)
	gates := string(spec.Approval)
	if gates == "" {
		gates = string(sluicev1beta1.ApprovalAutomatic)
	}
	if n := len(spec.Windows); n > 0 {
		gates += fmt.Sprintf(", %d promotion %s", n, plural(n, "window", "windows"))
	}
	fmt.Fprintf(w, "\nStage %s (approval %s)\n", spec.Name, gates)
	if spec.Hold != nil {
		fmt.Fprintf(w, "  Hold:          %s\n", oneLine(spec.Hold.Reason))
	}
	if st == nil || st.Bundle == "" {
		fmt.Fprintln(w, "  Bundle:        none yet")
		if st != nil && st.Gate != nil {
			s.gateLine(w, p, st.Gate)
		}
		return nil
	}
	bundle := st.Bundle + " (" + bundleImages(p, st.Bundle) + ")"
	if st.Rollback {
		bundle += ", written by a rollback"
	}
	fmt.Fprintf(w, "  Bundle:        %s\n", bundle)
	state := orDash(string(st.State))
	if st.Reason != "" {
		state += " (" + st.Reason + ")"
	}
	if st.LastTransitionTime != nil {
		state += " since " + timestamp(st.LastTransitionTime.Time)
	}
	fmt.Fprintf(w, "  State:         %s\n", state)
	if st.Message != "" {
		fmt.Fprintf(w, "  Message:       %s\n", oneLine(st.Message))
	}
	fmt.Fprintf(w, "  Commit:        %s\n", orDash(st.Commit))
	if st.PullRequest != "" {
		fmt.Fprintf(w, "  Pull request:  %s\n", st.PullRequest)
	}
	release := orDash(st.Release)
	if st.PromotedAt != nil {
		release += ", promoted " + timestamp(st.PromotedAt.Time)
	}
	fmt.Fprintf(w, "  Release:       %s\n", release)
	if st.Gate != nil {
		s.gateLine(w, p, st.Gate)
	}
	if len(st.Approvals) > 0 {
		as := make([]string, 0, len(st.Approvals))
		for _, a := range st.Approvals {
			as = append(as, a.Bundle+" at "+timestamp(a.Time.Time))
		}
		fmt.Fprintf(w, "  Approvals:     %s\n", strings.Join(as, ", "))
	}
	if len(st.History) == 0 {
		return nil
	}
	fmt.Fprintln(w, "  History (oldest first):")
	t := newTable(w, "    BUNDLE", "TAGS", "STATE", "REASON", "COMMIT", "RELEASE", "LEFT")
	for _, r := range st.History {
		t.row("    "+r.Bundle, orDash(bundleTags(p, r.Bundle)), string(r.State), orDash(r.Reason), orDash(shortSHA(r.Commit)), orDash(r.Release), timestamp(r.Time.Time))
	}
	return t.flush()
}

func (s *statusOptions) gateLine(w io.Writer, p *sluicev1beta1.Pipeline, g *sluicev1beta1.StageGate) {
	fmt.Fprintf(w, "  Waiting:       bundle %s (%s) at the gate: %s", g.Bundle, orDash(bundleTags(p, g.Bundle)), g.Reason)
	if g.Message != "" {
		fmt.Fprintf(w, ": %s", oneLine(g.Message))
	}
	fmt.Fprintln(w)
}

func (s *statusOptions) bundles(w io.Writer, p *sluicev1beta1.Pipeline) error {
	fmt.Fprintln(w, "\nBundles (oldest first):")
	if len(p.Status.Bundles) == 0 {
		fmt.Fprintln(w, "  none found yet")
		return nil
	}
	t := newTable(w, "  ID", "FOUND", "IMAGES", "CURRENT IN")
	for _, b := range p.Status.Bundles {
		images := make([]string, 0, len(b.Images))
		for _, im := range b.Images {
			images = append(images, fmt.Sprintf("%s=%s:%s@%s", im.Source, im.Repository, im.Tag, shortDigest(im.Digest)))
		}
		var in []string
		for _, st := range p.Status.Stages {
			if st.Bundle == b.ID {
				in = append(in, st.Name)
			}
		}
		t.row("  "+b.ID, timestamp(b.CreatedAt.Time), strings.Join(images, ","), orDash(strings.Join(in, ",")))
	}
	return t.flush()
}

// shortDigest is "sha256:" and 12 hex digits.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// shortSHA is the first 12 characters of a commit SHA.
func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
