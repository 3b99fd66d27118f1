package canary

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// dtTransitioned sets when the phase last changed (when the routes moved).
func dtTransitioned(ago time.Duration) dtStatusOpt {
	return func(s *sluicev1beta1.CanaryStatus) { s.LastTransitionTime = dtAgo(ago) }
}

// dtShortInterval analyses every 4 s.
func dtShortInterval() *sluicev1beta1.CanaryAnalysis {
	a := dtProgressive()
	a.Interval = &metav1.Duration{Duration: 4 * time.Second}
	return a
}

// TestDecide_Drain: a workload keeps its pods for one analysis interval (at
// most maxDrain) after the traffic was routed away from it, so that requests
// in flight and data planes that apply a route change after a moment do
// not meet a Service without pods.
func TestDecide_Drain(t *testing.T) {
	dtRunCases(t, []dtDecideCase{
		{
			name:        "Failed 3s ago: the canary keeps its pods until the drain is over",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtTransitioned(3*time.Second))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: maxDrain - 3*time.Second,
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name:        "Failed a drain ago: the canary is scaled down",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFailed, dtTransitioned(maxDrain))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects, ScaleTargetToZero),
			wantConds:   dtFailed("ReleaseFailed"),
		},
		{
			name:        "Initialized 1s ago: the target keeps serving what it was serving",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhInitialized, dtTransitioned(time.Second))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhInitialized,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: maxDrain - time.Second,
			wantConds:   dtSettled(dtPhInitialized),
		},
		{
			name:        "Finalising 3s ago: not scaled down yet",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFinalising, dtTransitioned(3*time.Second))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFinalising,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: maxDrain - 3*time.Second,
			wantConds:   dtReleasing("Finalising"),
		},
		{
			name:        "Finalising a drain ago: scaled down, then Succeeded once it is",
			obs:         dtObserve(dtCanary(dtProgressive(), dtStatus(dtPhFinalising, dtTransitioned(maxDrain))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFinalising,
			wantActions: dtActs(EnsureObjects, ScaleTargetToZero),
			wantRequeue: waitRetry,
			wantConds:   dtReleasing("Finalising"),
		},
		{
			name:        "a 4s interval drains for 4s",
			obs:         dtObserve(dtCanary(dtShortInterval(), dtStatus(dtPhFailed, dtTransitioned(time.Second))), dtTargetScaledToZero(false)),
			wantPhase:   dtPhFailed,
			wantActions: dtActs(EnsureObjects),
			wantRequeue: 3 * time.Second,
			wantConds:   dtFailed("ReleaseFailed"),
		},
	})
}
