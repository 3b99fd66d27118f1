package v1beta1

// BaselineEnabled tells whether the Canary asks for a baseline
// (spec.analysis.baseline).
func (in *Canary) BaselineEnabled() bool {
	return in.Spec.Analysis != nil && in.Spec.Analysis.Baseline
}

// BaselineName is the name of the baseline Deployment: the target's name
// with "-baseline", as the primary's has "-primary". Comparison queries set
// {{ target }} to it.
func (in *Canary) BaselineName() string { return in.Spec.TargetRef.Name + "-baseline" }

// BaselineServiceName is the name of the baseline's Service: the apex
// Service's name with "-baseline". Comparison queries set {{ service }} to it.
func (in *Canary) BaselineServiceName() string {
	apex, _, _ := in.ServiceNames()
	return apex + "-baseline"
}
