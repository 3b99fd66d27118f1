package v1beta1

import "time"

// DefaultGitSyncDriftCheckInterval is how often a GitSync compares every
// applied object with the cluster when spec.driftCheckInterval is unset.
// The watches report drift within seconds; this full comparison only
// catches what they cannot see, so it can be rare.
const DefaultGitSyncDriftCheckInterval = time.Hour

// DriftCheckIntervalOrDefault is spec.driftCheckInterval, or one hour.
func (in *GitSync) DriftCheckIntervalOrDefault() time.Duration {
	if in.Spec.DriftCheckInterval != nil && in.Spec.DriftCheckInterval.Duration > 0 {
		return in.Spec.DriftCheckInterval.Duration
	}
	return DefaultGitSyncDriftCheckInterval
}
