package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// newHelmCommand groups the commands about the chart releases of GitSyncs
// with spec.helm. GitSync writes no Helm release Secret (see
// docs/gitsync.md, Helm charts), so `helm history` does not know them:
// their history is in status.helm.history.
func newHelmCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "helm",
		Short: "Show the chart releases of GitSyncs with spec.helm",
	}
	cmd.AddCommand(newHelmHistoryCommand(o))
	return cmd
}

func newHelmHistoryCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "history GITSYNC",
		Short: "Print the release history of a GitSync's chart (status.helm.history), as helm history does",
		Long: `history prints the releases of the chart of a GitSync with spec.helm, oldest
first: revision, time, status (Deployed, Superseded, Failed, RolledBack), chart
version, values digest and what happened. A release that failed its health
checks and was rolled back (spec.helm.upgrade.remediation) says so.`,
		Example: "  kubectl sluice helm history podinfo -n sluice-system",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("helm history takes exactly one GitSync NAME (got %d arguments): e.g. kubectl sluice helm history podinfo -n sluice-system", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.helmHistory(cmd.Context(), args[0])
		},
	}
}

func (o *Options) helmHistory(ctx context.Context, name string) error {
	gs := &sluicev1beta1.GitSync{}
	if err := o.getObject(ctx, "GitSync", name, gs); err != nil {
		return err
	}
	if gs.Spec.Helm == nil {
		return fmt.Errorf("gitsync %s/%s renders no chart (no spec.helm), so it has no release history", gs.Namespace, gs.Name)
	}
	h := gs.Status.Helm
	if h == nil || len(h.History) == 0 {
		fmt.Fprintf(o.Streams.Out, "gitsync %s/%s has no release yet\n", gs.Namespace, gs.Name)
		return nil
	}
	w := tabwriter.NewWriter(o.Streams.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "REVISION\tUPDATED\tSTATUS\tCHART\tVALUES\tDESCRIPTION")
	for _, r := range h.History {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s-%s\t%s\t%s\n", r.Revision, r.Time.UTC().Format(time.RFC3339), r.Status, h.ChartName, r.ChartVersion,
			shortDigest(r.ValuesDigest), describeRelease(r, h.Remediation))
	}
	return w.Flush()
}

// describeRelease is the DESCRIPTION column, in helm history's words.
func describeRelease(r sluicev1beta1.GitSyncHelmRelease, rem *sluicev1beta1.GitSyncHelmRemediationStatus) string {
	switch r.Status {
	case sluicev1beta1.GitSyncHelmReleaseDeployed:
		return "Upgrade complete"
	case sluicev1beta1.GitSyncHelmReleaseSuperseded:
		return "Superseded by a newer release"
	case sluicev1beta1.GitSyncHelmReleaseRolledBack:
		if rem != nil && rem.Revision == r.Revision {
			return fmt.Sprintf("Failed its health checks %d times; rolled back to %d", rem.Failures, rem.RolledBackTo)
		}
		return "Failed its health checks; rolled back"
	case sluicev1beta1.GitSyncHelmReleaseFailed:
		if rem != nil && rem.Revision == r.Revision {
			return fmt.Sprintf("Failed its health checks %d times", rem.Failures)
		}
		return "Failed its health checks"
	}
	return ""
}
