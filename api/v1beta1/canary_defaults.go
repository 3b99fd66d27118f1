package v1beta1

import (
	"time"
)

// Defaults of the Canary fields, as in Flagger.
const (
	DefaultAnalysisInterval        = time.Minute
	DefaultMetricInterval          = time.Minute
	DefaultThreshold               = 1
	DefaultMaxWeight               = 100
	DefaultMirrorWeight            = 100
	DefaultReadyThreshold          = 100
	DefaultProgressDeadlineSeconds = 600
	DefaultPortName                = "http"
	DefaultWebhookTimeout          = 10 * time.Second
)

// DeploymentStrategy is the release strategy selected by the analysis shape.
type DeploymentStrategy string

// Strategies, with the names Flagger uses in its metrics labels.
const (
	StrategyCanary    DeploymentStrategy = "canary"
	StrategyABTesting DeploymentStrategy = "ab-testing"
	StrategyBlueGreen DeploymentStrategy = "blue-green"
)

// Strategy returns the release strategy: A/B testing when iterations and
// match are set, blue/green when only iterations are, otherwise a progressive
// canary. The kubernetes provider, which cannot split traffic, always releases
// blue/green.
func (in *Canary) Strategy(provider string) DeploymentStrategy {
	a := in.Spec.Analysis
	switch {
	case a != nil && a.Iterations > 0 && len(a.Match) > 0:
		return StrategyABTesting
	case a != nil && a.Iterations > 0, provider == ProviderKubernetes:
		return StrategyBlueGreen
	default:
		return StrategyCanary
	}
}

// AnalysisInterval is the time between analysis steps.
func (in *Canary) AnalysisInterval() time.Duration {
	if a := in.Spec.Analysis; a != nil && a.Interval != nil && a.Interval.Duration > 0 {
		return a.Interval.Duration
	}
	return DefaultAnalysisInterval
}

// Threshold is the number of failed checks that rolls a release back.
func (in *Canary) Threshold() int32 {
	if a := in.Spec.Analysis; a != nil && a.Threshold > 0 {
		return a.Threshold
	}
	return DefaultThreshold
}

// MaxWeight is the canary weight at which promotion starts: the last rung of
// stepWeights when set, else maxWeight, else 100.
func (in *Canary) MaxWeight() int32 {
	a := in.Spec.Analysis
	switch {
	case a == nil:
		return DefaultMaxWeight
	case len(a.StepWeights) > 0:
		return a.StepWeights[len(a.StepWeights)-1]
	case a.MaxWeight > 0:
		return a.MaxWeight
	default:
		return DefaultMaxWeight
	}
}

// MirrorWeight is the percentage of traffic mirrored to the canary.
func (in *Canary) MirrorWeight() int32 {
	if a := in.Spec.Analysis; a != nil && a.MirrorWeight > 0 {
		return a.MirrorWeight
	}
	return DefaultMirrorWeight
}

// Iterations is the number of analysis steps of a blue/green or A/B release.
// The kubernetes provider releases blue/green and defaults to 10 iterations.
func (in *Canary) Iterations(provider string) int32 {
	if a := in.Spec.Analysis; a != nil && a.Iterations > 0 {
		return a.Iterations
	}
	if provider == ProviderKubernetes {
		return 10
	}
	return 0
}

// PrimaryReadyThreshold is the percentage of primary pods that must be available.
func (in *Canary) PrimaryReadyThreshold() int32 {
	if a := in.Spec.Analysis; a != nil && a.PrimaryReadyThreshold != nil {
		return *a.PrimaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// CanaryReadyThreshold is the percentage of canary pods that must be available.
func (in *Canary) CanaryReadyThreshold() int32 {
	if a := in.Spec.Analysis; a != nil && a.CanaryReadyThreshold != nil {
		return *a.CanaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// ProgressDeadline is how long a workload may take to become ready.
func (in *Canary) ProgressDeadline() time.Duration {
	if in.Spec.ProgressDeadlineSeconds != nil && *in.Spec.ProgressDeadlineSeconds > 0 {
		return time.Duration(*in.Spec.ProgressDeadlineSeconds) * time.Second
	}
	return DefaultProgressDeadlineSeconds * time.Second
}

// SkipsAnalysis tells whether a new revision is promoted without analysis.
func (in *Canary) SkipsAnalysis() bool {
	return in.Spec.SkipAnalysis || in.Spec.Analysis == nil
}

// ServiceNames returns the names of the apex, primary and canary Services.
func (in *Canary) ServiceNames() (apex, primary, canary string) {
	apex = in.Spec.Service.Name
	if apex == "" {
		apex = in.Spec.TargetRef.Name
	}
	return apex, apex + "-primary", apex + "-canary"
}

// PrimaryName is the name of the primary workload.
func (in *Canary) PrimaryName() string { return in.Spec.TargetRef.Name + "-primary" }

// PortName is the name of the Service port.
func (in *Canary) PortName() string {
	if in.Spec.Service.PortName != "" {
		return in.Spec.Service.PortName
	}
	return DefaultPortName
}

// IntervalOrDefault is the query range of a metric.
func (m *CanaryMetric) IntervalOrDefault() time.Duration {
	if m.Interval != nil && m.Interval.Duration > 0 {
		return m.Interval.Duration
	}
	return DefaultMetricInterval
}

// TimeoutOrDefault is the timeout of one call of a webhook.
func (w *CanaryWebhook) TimeoutOrDefault() time.Duration {
	if d, err := time.ParseDuration(w.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultWebhookTimeout
}

// TypeOrDefault is the webhook type; empty means rollout.
func (w *CanaryWebhook) TypeOrDefault() string {
	if w.Type == "" {
		return WebhookRollout
	}
	return w.Type
}
