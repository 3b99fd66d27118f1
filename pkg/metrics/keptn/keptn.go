// Package keptn reads Keptn's metrics (metrics.keptn.sh) as Flagger's keptn
// provider does: the value of a KeptnMetric, or the verdict of a Keptn
// Analysis it creates, runs and deletes. Keptn's types are read as
// unstructured objects: its Go module is not imported (house style: no
// copied third-party API types).
package keptn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=keptnmetrics,verbs=get
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=analyses,verbs=get;create;delete

// Keptn's current API version (v1beta1, which Flagger reads, is served too
// and holds the same fields).
var (
	keptnMetricGVK = schema.GroupVersionKind{Group: "metrics.keptn.sh", Version: "v1", Kind: "KeptnMetric"}
	analysisGVK    = schema.GroupVersionKind{Group: "metrics.keptn.sh", Version: "v1", Kind: "Analysis"}
)

// PollInterval is how often a running Analysis is read.
const PollInterval = 500 * time.Millisecond

// Keptn reads KeptnMetrics and runs Analyses through the Kubernetes API.
type Keptn struct {
	client client.Client
	poll   time.Duration
}

var _ metrics.Provider = (*Keptn)(nil)

// New returns the keptn Factory, bound to a Kubernetes client (the
// manager's: unstructured objects are read from the API server, never from
// a cache that would need a watch on Keptn's types).
func New(c client.Client) metrics.Factory {
	return func(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
		if cfg.Address != "" {
			return nil, fmt.Errorf("%w: the keptn provider reads KeptnMetrics and Analyses from the cluster: remove provider.address", metrics.ErrInvalidConfig)
		}
		if cfg.Secret != nil {
			return nil, fmt.Errorf("%w: the keptn provider uses the controller's service account: remove provider.secretRef", metrics.ErrInvalidConfig)
		}
		return &Keptn{client: c, poll: PollInterval}, nil
	}
}

// query is a parsed Flagger keptn query:
// <keptnmetric|analysis>/<namespace>/<name>[/<timeframe>[/<k=v;k=v>]].
type query struct {
	kind      schema.GroupVersionKind
	namespace string
	name      string
	timeframe string
	args      map[string]any
}

func parse(q string) (query, error) {
	parts := strings.Split(strings.TrimSpace(q), "/")
	if len(parts) < 3 || len(parts) > 5 {
		return query{}, errors.New("the keptn query must be keptnmetric/<namespace>/<name> or analysis/<namespace>/<analysis-definition>[/<timeframe>[/<key>=<value>;...]]")
	}
	out := query{namespace: parts[1], name: parts[2]}
	for _, n := range []string{out.namespace, out.name} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			return query{}, fmt.Errorf("the keptn query names %q, not a Kubernetes name: %s", n, strings.Join(errs, "; "))
		}
	}
	switch strings.ToLower(parts[0]) {
	case "keptnmetric", "keptnmetrics":
		out.kind = keptnMetricGVK
		if len(parts) > 3 {
			return query{}, errors.New("a keptnmetric query has no timeframe or arguments: the KeptnMetric's own spec says what it measures")
		}
	case "analysis", "analyses":
		out.kind, out.timeframe, out.args = analysisGVK, "1m", map[string]any{}
		if len(parts) > 3 {
			if _, err := time.ParseDuration(parts[3]); err != nil {
				return query{}, fmt.Errorf("the keptn analysis timeframe %q is not a duration such as 5m", parts[3])
			}
			out.timeframe = parts[3]
		}
		if len(parts) > 4 && parts[4] != "" {
			for _, kv := range strings.Split(parts[4], ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return query{}, fmt.Errorf("the keptn analysis argument %q is not key=value", kv)
				}
				out.args[k] = v
			}
		}
	default:
		return query{}, fmt.Errorf("the keptn query starts with %q: use keptnmetric or analysis", parts[0])
	}
	return out, nil
}

// Query reads a KeptnMetric's status.value, or runs an Analysis and returns
// 1 when it passed, 0 when it failed (thresholdRange {min: 1} asks for a
// pass). A KeptnMetric without a value yet is metrics.ErrNoData; one whose
// provider failed (status.errMsg) is an error quoting Keptn.
func (k *Keptn) Query(ctx context.Context, q string) (float64, error) {
	p, err := parse(q)
	if err != nil {
		return 0, err
	}
	if p.kind == analysisGVK {
		return k.analysis(ctx, p)
	}
	return k.keptnMetric(ctx, p)
}

func (k *Keptn) keptnMetric(ctx context.Context, p query) (float64, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(p.kind)
	if err := k.client.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: p.name}, u); err != nil {
		return 0, getError("KeptnMetric", p, err)
	}
	if msg, _, _ := unstructured.NestedString(u.Object, "status", "errMsg"); msg != "" {
		return 0, fmt.Errorf("KeptnMetric %s/%s failed: %.512s", p.namespace, p.name, msg)
	}
	value, _, _ := unstructured.NestedString(u.Object, "status", "value")
	if value == "" {
		return 0, metrics.ErrNoData // Keptn has not fetched it yet
	}
	f, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("KeptnMetric %s/%s has the value %.64q, not a number", p.namespace, p.name, value)
	}
	if math.IsNaN(f) {
		return 0, metrics.ErrNoData
	}
	return f, nil
}

// analysis creates an Analysis of the AnalysisDefinition, waits (within the
// query's deadline) until Keptn completes it, and deletes it.
func (k *Keptn) analysis(ctx context.Context, p query) (float64, error) {
	a := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"analysisDefinition": map[string]any{"name": p.name, "namespace": p.namespace},
			"timeframe":          map[string]any{"recent": p.timeframe},
			"args":               p.args,
		},
	}}
	a.SetGroupVersionKind(p.kind)
	a.SetNamespace(p.namespace)
	a.SetGenerateName(truncateName(p.name) + "-")
	a.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "sluice"})
	if err := k.client.Create(ctx, a); err != nil {
		return 0, getError("Analysis of AnalysisDefinition", p, err)
	}
	defer func() {
		// The query's context may be over: delete with a short one of its own.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.IgnoreNotFound(k.client.Delete(dctx, a))
	}()
	for {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(p.kind)
		if err := k.client.Get(ctx, client.ObjectKeyFromObject(a), u); err != nil {
			return 0, fmt.Errorf("failed to read Analysis %s/%s: %w", p.namespace, a.GetName(), err)
		}
		if state, _, _ := unstructured.NestedString(u.Object, "status", "state"); state == "Completed" {
			if pass, _, _ := unstructured.NestedBool(u.Object, "status", "pass"); pass {
				return 1, nil
			}
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the Analysis %s/%s of AnalysisDefinition %s did not complete in time (is Keptn's metrics-operator running?): %w",
				p.namespace, a.GetName(), p.name, ctx.Err())
		case <-time.After(k.poll):
		}
	}
}

// getError says what is missing: the object, or Keptn itself.
func getError(what string, p query, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s/%s not found", what, p.namespace, p.name)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%s %s/%s: the metrics.keptn.sh API is not installed (install Keptn's metrics-operator): %w", what, p.namespace, p.name, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s %s/%s: the controller may not access it (check the chart's engine role): %w", what, p.namespace, p.name, err)
	}
	return fmt.Errorf("failed to access %s %s/%s: %w", what, p.namespace, p.name, err)
}

// truncateName leaves room for generateName's 5-character suffix.
func truncateName(s string) string {
	if len(s) > 57 {
		return strings.TrimRight(s[:57], "-.")
	}
	return s
}
