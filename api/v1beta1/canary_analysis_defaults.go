package v1beta1

import "time"

// Defaults of the analysis features beyond Flagger's (issue 19).
const (
	// DefaultHistoryLimit is the number of steps status.history keeps when
	// spec.analysis.historyLimit is unset: what it kept before the field.
	DefaultHistoryLimit = 10
	// MaxHistoryLimit bounds spec.analysis.historyLimit, and with it the
	// size of the status (each step holds up to 64 checks).
	MaxHistoryLimit = 50
)

// HistoryLimit is the number of analysis steps status.history keeps.
func (in *Canary) HistoryLimit() int {
	if a := in.Spec.Analysis; a != nil && a.HistoryLimit > 0 {
		return int(min(a.HistoryLimit, MaxHistoryLimit))
	}
	return DefaultHistoryLimit
}

// SuccessLimit is the number of consecutive passing steps that ends the
// analysis; 0 when only the weights or iterations end it.
func (in *Canary) SuccessLimit() int32 {
	if a := in.Spec.Analysis; a != nil && a.SuccessLimit > 0 {
		return a.SuccessLimit
	}
	return 0
}

// InitialDelayOrZero is how long after the start of the release the metric
// is first checked.
func (m CanaryMetric) InitialDelayOrZero() time.Duration {
	if m.InitialDelay != nil && m.InitialDelay.Duration > 0 {
		return m.InitialDelay.Duration
	}
	return 0
}
