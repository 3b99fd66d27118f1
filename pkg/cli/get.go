package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// resource is a kind `get` lists.
type resource int

const (
	resourceCanary resource = iota
	resourceGitSync
	resourcePipeline
)

// resourceOf maps the names kubectl users type to a kind.
func resourceOf(s string) (resource, error) {
	switch s {
	case "canaries", "canary", "cnry":
		return resourceCanary, nil
	case "gitsyncs", "gitsync", "gs":
		return resourceGitSync, nil
	case "pipelines", "pipeline", "pipe":
		return resourcePipeline, nil
	}
	return 0, fmt.Errorf("unknown resource type %q: use canaries (canary, cnry), gitsyncs (gitsync, gs) or pipelines (pipeline, pipe)", s)
}

type getOptions struct {
	*Options
	allNamespaces bool
	output        string
}

func newGetCommand(o *Options) *cobra.Command {
	g := &getOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "get [canaries|gitsyncs|pipelines] [NAME]",
		Short: "List Canaries (default), GitSyncs or Pipelines with their phase, revision or stages",
		Example: `  kubectl sluice get -A
  kubectl sluice get canary podinfo -n test -o yaml
  kubectl sluice get gitsyncs
  kubectl sluice get pipelines -n sluice-system`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, name := resourceCanary, ""
			if len(args) > 0 {
				r, err := resourceOf(args[0])
				if err != nil && len(args) == 1 {
					return fmt.Errorf("%w; to get one Canary: kubectl sluice get canary %s", err, args[0])
				}
				if err != nil {
					return err
				}
				res = r
			}
			if len(args) == 2 {
				name = args[1]
			}
			return g.run(cmd.Context(), res, name)
		},
	}
	cmd.Flags().BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "List across all namespaces")
	addOutputFlag(cmd, &g.output)
	return cmd
}

func (g *getOptions) run(ctx context.Context, res resource, name string) error {
	if err := checkOutput(g.output); err != nil {
		return err
	}
	if name != "" && g.allNamespaces {
		return fmt.Errorf("a NAME cannot be combined with --all-namespaces: name the namespace with -n instead")
	}
	if res == resourcePipeline {
		return g.runPipelines(ctx, name)
	}
	kind := map[resource]string{resourceCanary: "Canary", resourceGitSync: "GitSync"}[res]
	if name != "" {
		var obj client.Object = &sluicev1beta1.Canary{}
		if res == resourceGitSync {
			obj = &sluicev1beta1.GitSync{}
		}
		if err := g.getObject(ctx, kind, name, obj); err != nil {
			return err
		}
		if g.output != outputTable {
			return g.printObject(g.Streams.Out, g.output, obj)
		}
		if c, ok := obj.(*sluicev1beta1.Canary); ok {
			return g.canaryTable([]sluicev1beta1.Canary{*c})
		}
		return g.gitSyncTable([]sluicev1beta1.GitSync{*obj.(*sluicev1beta1.GitSync)})
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
	var list client.ObjectList = &sluicev1beta1.CanaryList{}
	if res == resourceGitSync {
		list = &sluicev1beta1.GitSyncList{}
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return explain(err, kind, orDash(ns), "(list)")
	}
	if g.output != outputTable {
		return g.printObject(g.Streams.Out, g.output, list)
	}
	if apimeta.LenList(list) == 0 {
		where := "in namespace " + ns
		if g.allNamespaces {
			where = "in any namespace"
		}
		plural := map[resource]string{resourceCanary: "canaries", resourceGitSync: "gitsyncs"}[res]
		fmt.Fprintf(g.Streams.ErrOut, "No %s found %s.\n", plural, where)
		return nil
	}
	if l, ok := list.(*sluicev1beta1.CanaryList); ok {
		return g.canaryTable(l.Items)
	}
	return g.gitSyncTable(list.(*sluicev1beta1.GitSyncList).Items)
}

// canaryTable prints NAMESPACE (with -A), NAME, PHASE, WEIGHT, REVISION, AGE.
func (g *getOptions) canaryTable(items []sluicev1beta1.Canary) error {
	header := []string{"NAME", "PHASE", "WEIGHT", "FAILED", "REVISION", "AGE"}
	if g.allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	t := newTable(g.Streams.Out, header...)
	for i := range items {
		c := &items[i]
		phase := string(c.Status.Phase)
		if phase == "" {
			phase = "Pending"
		}
		if c.Spec.Suspend {
			phase += " (suspended)"
		}
		row := []string{
			c.Name, phase, strconv.Itoa(int(c.Status.CanaryWeight)),
			fmt.Sprintf("%d/%d", c.Status.FailedChecks, c.Threshold()),
			orDash(c.Status.Revision), g.age(c.CreationTimestamp),
		}
		if g.allNamespaces {
			row = append([]string{c.Namespace}, row...)
		}
		t.row(row...)
	}
	return t.flush()
}

// gitSyncTable prints NAMESPACE (with -A), NAME, READY, REVISION, SUSPENDED, AGE, MESSAGE.
func (g *getOptions) gitSyncTable(items []sluicev1beta1.GitSync) error {
	header := []string{"NAME", "READY", "REVISION", "SUSPENDED", "AGE", "MESSAGE"}
	if g.allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	t := newTable(g.Streams.Out, header...)
	for i := range items {
		gs := &items[i]
		ready, msg := "Unknown", ""
		if cond := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition); cond != nil {
			ready, msg = string(cond.Status), cond.Message
		}
		row := []string{
			gs.Name, ready, orDash(gs.Status.LastAppliedRevision), strconv.FormatBool(gs.Spec.Suspend),
			g.age(gs.CreationTimestamp), oneLine(msg),
		}
		if g.allNamespaces {
			row = append([]string{gs.Namespace}, row...)
		}
		t.row(row...)
	}
	return t.flush()
}
