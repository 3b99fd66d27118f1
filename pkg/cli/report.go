package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/delivery"
)

// reportOptions are the flags of `kubectl sluice report`.
type reportOptions struct {
	*Options
	allNamespaces bool
	output        string
	since         string
}

func newReportCommand(o *Options) *cobra.Command {
	r := &reportOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Delivery figures (DORA) of the Canaries: deployments, change failure rate, lead time, time to restore, drift",
		Long: `Report the delivery figures of the Canaries of a namespace (or all, with -A) over a window:
deployments and deployments per day, change failure rate, median and p90 lead time for changes and
its parts (commit to GitSync apply, apply to release start, release duration), mean time to restore,
and the drift corrections of the GitSyncs.

The figures come from status.delivery of each Canary, which keeps the last 32 releases: a window
longer than those records is reported over the records, and the output says so. Drift corrections
come from the GitSyncs' DriftCorrected events, which the API server keeps for an hour by default;
the metric sluice_gitsync_drift_corrections_total counts them all (docs/delivery.md).`,
		Example: `  kubectl sluice report --since 30d
  kubectl sluice report -A --since 7d -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return r.run(cmd.Context()) },
	}
	cmd.Flags().BoolVarP(&r.allNamespaces, "all-namespaces", "A", false, "Report across all namespaces")
	cmd.Flags().StringVar(&r.since, "since", "30d", "Window of the report, back from now: a number of days (30d) or a Go duration (12h, 90m)")
	addOutputFlag(cmd, &r.output)
	return cmd
}

// parseSince reads "30d" or a Go duration.
func parseSince(s string) (time.Duration, error) {
	d, err := delivery.ParseWindow(s)
	if err != nil {
		return 0, fmt.Errorf("invalid --since: %w", err)
	}
	return d, nil
}

func (r *reportOptions) run(ctx context.Context) error {
	if err := checkOutput(r.output); err != nil {
		return err
	}
	since, err := parseSince(r.since)
	if err != nil {
		return err
	}
	c, err := r.Client()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	ns := ""
	if !r.allNamespaces {
		if ns, err = r.Namespace(); err != nil {
			return err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	canaries := &sluicev1beta1.CanaryList{}
	if err := c.List(ctx, canaries, opts...); err != nil {
		return explain(err, "Canary", orDash(ns), "(list)")
	}
	events := &unstructured.UnstructuredList{}
	events.SetAPIVersion("events.k8s.io/v1")
	events.SetKind("EventList")
	if err := c.List(ctx, events, opts...); err != nil {
		return fmt.Errorf("failed to list the events of the GitSyncs: %w", err)
	}
	rep := buildReport(canaries.Items, events.Items, r.since, since, r.Now())
	switch r.output {
	case outputJSON:
		return r.printObjectJSON(rep)
	case outputYAML:
		data, err := yaml.Marshal(rep)
		if err != nil {
			return fmt.Errorf("failed to encode the report: %w", err)
		}
		_, err = r.Streams.Out.Write(data)
		return err
	}
	return printReport(r.Streams.Out, rep, r.allNamespaces)
}

func (r *reportOptions) printObjectJSON(rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "    ")
	data = append(data, '\n')
	if err != nil {
		return fmt.Errorf("failed to encode the report: %w", err)
	}
	_, err = r.Streams.Out.Write(data)
	return err
}

// The figures are computed by pkg/delivery, which the dashboard shares.
type (
	Report       = delivery.Report
	CanaryReport = delivery.CanaryReport
	Figures      = delivery.Figures
	Quantiles    = delivery.Quantiles
	DriftReport  = delivery.DriftReport
)

func buildReport(canaries []sluicev1beta1.Canary, events []unstructured.Unstructured, sinceFlag string, since time.Duration, now time.Time) *Report {
	return delivery.Build(canaries, events, sinceFlag, since, now)
}

func humanSeconds(s int64) string { return delivery.HumanSeconds(s) }

// printReport writes the report as tables.
func printReport(w io.Writer, rep *Report, allNamespaces bool) error {
	fmt.Fprintf(w, "Delivery over the last %s (from status.delivery: at most the last %d releases of each Canary)\n\n",
		rep.Since, sluicev1beta1.DeliveryRecordLimit)
	header := []string{"NAME", "DEPLOYMENTS", "PER-DAY", "STARTED", "ROLLED-BACK", "FAILURE-RATE",
		"LEAD-TIME-P50", "LEAD-TIME-P90", "COMMIT-APPLIED-P50", "APPLIED-START-P50", "RELEASE-P50", "MTTR"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	t := newTable(w, header...)
	row := func(ns, name string, f Figures) {
		cells := []string{name, strconv.FormatInt(f.Deployments, 10), strconv.FormatFloat(f.DeploymentsPerDay, 'f', -1, 64),
			strconv.FormatInt(f.ReleasesStarted, 10), rollbacksCell(f), percent(f.ChangeFailureRate),
			seconds(f.LeadTime.Median), seconds(f.LeadTime.P90), seconds(f.CommitToApplied.Median),
			seconds(f.AppliedToStart.Median), seconds(f.ReleaseDuration.Median), meanSeconds(f.MeanTimeToRestoreSeconds)}
		if allNamespaces {
			cells = append([]string{ns}, cells...)
		}
		t.row(cells...)
	}
	for _, c := range rep.Canaries {
		row(c.Namespace, c.Name, c.Figures)
	}
	row("", "TOTAL", rep.Total)
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDrift corrections of GitSyncs: %d (from their DriftCorrected events, kept by the API server for an hour by default)\n", rep.DriftCorrections)
	if len(rep.GitSyncs) > 0 {
		t = newTable(w, "NAMESPACE", "GITSYNC", "CORRECTIONS")
		for _, g := range rep.GitSyncs {
			t.row(g.Namespace, g.Name, strconv.FormatInt(g.Corrections, 10))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	return nil
}

// rollbacksCell is "2 (Analysis 1, Aborted 1)".
func rollbacksCell(f Figures) string {
	if f.Rollbacks == 0 {
		return "0"
	}
	var causes []string
	for k, v := range f.RollbacksByCause {
		causes = append(causes, fmt.Sprintf("%s:%d", k, v))
	}
	slices.Sort(causes)
	return fmt.Sprintf("%d(%s)", f.Rollbacks, strings.Join(causes, ","))
}

func percent(r *float64) string {
	if r == nil {
		return "-"
	}
	return strconv.FormatFloat(math.Round(*r*1000)/10, 'f', -1, 64) + "%"
}

func seconds(s *int64) string {
	if s == nil {
		return "-"
	}
	return humanSeconds(*s)
}

func meanSeconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return humanSeconds(int64(math.Round(*s)))
}
