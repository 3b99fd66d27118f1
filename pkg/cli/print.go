package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outputTable = ""
	outputYAML  = "yaml"
	outputJSON  = "json"
)

// addOutputFlag adds -o/--output to a command.
func addOutputFlag(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVarP(out, "output", "o", outputTable, "Output format: yaml or json (default: a table)")
}

// checkOutput rejects an unknown -o value.
func checkOutput(out string) error {
	switch out {
	case outputTable, outputYAML, outputJSON:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use -o yaml, -o json, or no -o for a table", out)
}

// printObject writes an object (or a list) as YAML or JSON, with its
// apiVersion and kind and without managedFields, like kubectl.
func (o *Options) printObject(w io.Writer, format string, obj runtime.Object) error {
	if err := o.setKind(obj); err != nil {
		return err
	}
	if meta, ok := obj.(client.Object); ok {
		meta.SetManagedFields(nil)
	}
	if list, ok := obj.(client.ObjectList); ok {
		items, err := itemsOf(list)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := o.setKind(it); err != nil {
				return err
			}
			it.SetManagedFields(nil)
		}
	}
	var data []byte
	var err error
	switch format {
	case outputJSON:
		data, err = json.MarshalIndent(obj, "", "    ")
		data = append(data, '\n')
	default:
		data, err = yaml.Marshal(obj)
	}
	if err != nil {
		return fmt.Errorf("failed to encode the output: %w", err)
	}
	_, err = w.Write(data)
	return err
}

// setKind fills apiVersion and kind, which typed clients leave empty.
func (o *Options) setKind(obj runtime.Object) error {
	gvk, err := apiutil.GVKForObject(obj, o.scheme)
	if err != nil {
		return fmt.Errorf("failed to find the kind of %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// itemsOf returns pointers to the items of a Sluice list.
func itemsOf(list client.ObjectList) ([]client.Object, error) {
	objs, err := apimeta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("failed to read the items of %T: %w", list, err)
	}
	out := make([]client.Object, 0, len(objs))
	for _, obj := range objs {
		co, ok := obj.(client.Object)
		if !ok {
			return nil, fmt.Errorf("item %T of %T is not an object", obj, list)
		}
		out = append(out, co)
	}
	return out, nil
}

// table writes rows aligned in columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }
func (t *table) flush() error        { return t.tw.Flush() }

// age is the short age of a timestamp, kubectl style ("5m", "3d").
func (o *Options) age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(o.Now().Sub(ts.Time))
}

// ago is "5m ago" for a time, or "-".
func (o *Options) ago(ts *metav1.Time) string {
	if ts == nil || ts.IsZero() {
		return "-"
	}
	return o.age(*ts) + " ago"
}

// orDash prints "-" for an empty value.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a message on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// timestamp is an absolute UTC time.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
