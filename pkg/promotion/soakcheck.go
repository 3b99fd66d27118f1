package promotion

import (
	"context"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/metrics"
)

// The metrics checker reads MetricTemplates and the metadata of their
// credentials Secrets from the manager's cache, as the canary engine's does.
// +kubebuilder:rbac:groups=sluice.dev,resources=metrictemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// MetricChecker runs one metric of a Canary: pkg/metrics.Checker, the very
// code the canary engine's analysis runs.
type MetricChecker interface {
	Check(ctx context.Context, c *sluicev1beta1.Canary, provider string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult
}

// soakChecks runs the stage Canary's metrics on the primary when the stage
// soaks with soakChecks: Metrics and a round is due (an analysis interval
// after status.stages[].lastSoakCheck, so that a restart neither skips nor
// repeats a round); nil otherwise. Only Canaries of the manager's cluster
// are checked: the API refuses soakChecks with canaryRef.kubeConfig.
func (r *Reconciler) soakChecks(ctx context.Context, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus, c *sluicev1beta1.Canary, now time.Time) *SoakChecks {
	if spec.SoakChecks != sluicev1beta1.SoakChecksMetrics || st == nil || st.State != sluicev1beta1.StageSoaking ||
		c == nil || spec.CanaryRef.KubeConfig != nil || r.Metrics == nil {
		return nil
	}
	if st.LastSoakCheck != nil && now.Before(st.LastSoakCheck.Add(c.AnalysisInterval())) {
		return nil
	}
	provider := c.Spec.Provider
	if provider == "" {
		provider = r.DefaultProvider
	}
	out := &SoakChecks{At: now}
	if c.Spec.Analysis == nil {
		return out
	}
	log := ctrl.LoggerFrom(ctx).WithValues("stage", spec.Name, "Canary", c.Namespace+"/"+c.Name)
	for _, m := range c.Spec.Analysis.Metrics {
		pc, pm := onPrimary(r.Builtins, c, provider, m)
		res := r.Metrics.Check(ctx, pc, provider, pm)
		log.V(1).Info("Checked a metric on the primary", "metric", m.Name, "outcome", res.Outcome)
		out.Results = append(out.Results, res)
	}
	return out
}

// onPrimary makes a metric measure the primary, which serves the promoted
// release once the canary workload is scaled to zero:
//   - query templates (inline queries, MetricTemplates and the builtins)
//     see {{ target }} as the primary workload, <targetRef.name>-primary;
//     {{ service }} stays the apex Service. The builtins of istio and
//     kubernetes select the workload and its pods by {{ target }};
//   - the builtins of traefik and gatewayapi select the canary's backend,
//     <namespace>-<service>-canary-<port>: the soak selects the primary's,
//     <namespace>-<service>-primary-<port>.
func onPrimary(builtins metrics.BuiltinQueries, c *sluicev1beta1.Canary, provider string, m sluicev1beta1.CanaryMetric) (*sluicev1beta1.Canary, sluicev1beta1.CanaryMetric) {
	pc := c.DeepCopy()
	apex, _, _ := c.ServiceNames()
	pc.Spec.Service.Name = apex
	pc.Spec.TargetRef.Name = c.PrimaryName()
	if m.TemplateRef == nil && m.Query == "" && builtins != nil {
		if q, err := builtins.BuiltinQuery(provider, m.Name); err == nil {
			// An inline query resolves as the builtin does (same server,
			// same thresholds): only its backend changes.
			m.Query = strings.ReplaceAll(q, "{{ service }}-canary-", "{{ service }}-primary-")
		}
	}
	return pc, m
}
