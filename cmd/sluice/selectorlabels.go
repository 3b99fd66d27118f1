package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// selectorLabelList splits --selector-labels, dropping blanks around the
// commas, in the order given (the first found in a target's selector wins).
func selectorLabelList(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// validateSelectorLabels refuses an empty list and keys that cannot be
// label keys: no target could ever match them.
func validateSelectorLabels(s string) error {
	labels := selectorLabelList(s)
	if len(labels) == 0 {
		return fmt.Errorf("--selector-labels must name at least one label, e.g. app,name,app.kubernetes.io/name")
	}
	for _, l := range labels {
		if errs := validation.IsQualifiedName(l); len(errs) > 0 {
			return fmt.Errorf("--selector-labels: %q is not a label key: %s", l, strings.Join(errs, "; "))
		}
	}
	return nil
}
