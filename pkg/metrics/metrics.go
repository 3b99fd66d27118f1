// Package metrics runs a Canary's metric checks. Each metric resolves to a
// query and a Prometheus server: builtin metrics and inline queries use the
// Canary's spec.metricsServer or --metrics-server, template metrics their
// MetricTemplate's provider. Each check ends Passed, Failed (value outside the
// threshold range), Inconclusive (outside it, but inside the inconclusive
// range), Error (query failed) or NoData (no series, NaN), and the metric's
// noData and onError policies say what NoData and Error count as. A dry-run
// metric's result is marked so that the engine records it and ignores it.
package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Reasons of Error outcomes.
const (
	ReasonQueryFailed           = "QueryFailed"
	ReasonMultipleSeries        = "MultipleSeries"
	ReasonTemplateNotFound      = "TemplateNotFound"
	ReasonSecretNotFound        = "SecretNotFound"
	ReasonUnsupportedProvider   = "UnsupportedProvider"
	ReasonRenderFailed          = "RenderFailed"
	ReasonInvalidProviderConfig = "InvalidProviderConfig"
)

// DefaultQueryTimeout bounds one query.
const DefaultQueryTimeout = 10 * time.Second

// Checker checks metrics against their providers. It implements the canary
// engine's MetricChecker.
type Checker struct {
	// Client reads MetricTemplates and Secret metadata (from caches).
	Client client.Reader
	// SecretReader reads Secret data (uncached).
	SecretReader client.Reader
	// DefaultAddress is --metrics-server: the Prometheus of builtin metrics,
	// inline queries and Prometheus templates without an address.
	DefaultAddress string
	// Timeout bounds each query; DefaultQueryTimeout when zero.
	Timeout time.Duration
	// Providers are the clients of MetricTemplate provider types;
	// DefaultProviders() (Prometheus only) when nil.
	Providers Providers
	// Builtins are the builtin metrics' queries per traffic provider (the
	// router registry); without them builtin metrics are UnsupportedProvider.
	Builtins BuiltinQueries

	mu      sync.Mutex
	clients map[string]cachedClient
}

type cachedClient struct {
	version  string
	provider Provider
	secrets  []string // values to redact
}

// target is a resolved metric: the query template and where to send it.
type target struct {
	query     string
	typ       string
	address   string
	provider  *sluicev1beta1.MetricTemplateProvider
	namespace string // of the template, for its Secret
}

// Check runs one metric of a Canary.
func (k *Checker) Check(ctx context.Context, c *sluicev1beta1.Canary, provider string, m sluicev1beta1.CanaryMetric) sluicev1beta1.CheckResult {
	res := sluicev1beta1.CheckResult{Name: m.Name, Kind: "metric", DryRun: m.DryRun}
	t, reason, err := k.resolve(ctx, c, provider, m)
	if err != nil {
		return failed(res, m, reason, err)
	}
	model := canaryModel(c, m)
	if m.Compare != nil {
		return k.checkCompared(ctx, c, m, t, model, res)
	}
	got := k.measure(ctx, t, model, m)
	res.Query = got.query
	if out, done := settle(res, m, got, ""); done {
		return out
	}
	v := formatValue(got.value)
	res.Value = &v
	res.Outcome, res.Message = judge(m, got.value)
	return res
}

// canaryModel is what the metric's query templates see when they measure
// the canary.
func canaryModel(c *sluicev1beta1.Canary, m sluicev1beta1.CanaryMetric) Model {
	apex, _, _ := c.ServiceNames()
	model := Model{Name: c.Name, Namespace: c.Namespace, Target: c.Spec.TargetRef.Name, Service: apex,
		Route: apex, Interval: m.IntervalOrDefault(), Variables: m.TemplateVariables}
	if c.Spec.IngressRef != nil {
		model.Ingress = c.Spec.IngressRef.Name
	}
	if c.Spec.RouteRef != nil {
		model.Route = c.Spec.RouteRef.Name
	}
	return model
}

// measurement is the answer of one query: a value, no data, or an error.
type measurement struct {
	value  float64
	query  string // rendered, credentials redacted, bounded
	noData bool   // the backend has no value (ErrNoData)
	nan    bool   // the backend let NaN through
	reason string // of an error
	err    error  // credentials redacted
}

// measure renders a metric's query with a model and runs it.
func (k *Checker) measure(ctx context.Context, t target, model Model, m sluicev1beta1.CanaryMetric) measurement {
	query, err := Render(t.query, model)
	if err != nil {
		return measurement{reason: ReasonRenderFailed, err: err}
	}
	if t.typ == "web" { // its URL and body are templates too (docs/metrics.md)
		if t, err = renderWeb(t, model); err != nil {
			return measurement{reason: ReasonRenderFailed, err: err}
		}
	}
	prov, secrets, reason, err := k.client(ctx, t)
	if err != nil {
		return measurement{reason: reason, err: errors.New(redact(err.Error(), secrets))}
	}
	out := measurement{query: truncate(redact(query, secrets), 4096)}
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	qctx = WithInterval(qctx, m.IntervalOrDefault())
	value, err := prov.Query(qctx, query)
	var multi *MultipleSeriesError
	switch {
	case errors.Is(err, ErrNoData):
		out.noData = true
	case errors.As(err, &multi):
		out.reason, out.err = ReasonMultipleSeries, err
	case err != nil:
		out.reason, out.err = ReasonQueryFailed, errors.New(redact(err.Error(), secrets))
	case math.IsNaN(value):
		out.nan = true
	default:
		out.value = value
	}
	return out
}

// settle ends a check whose measurement has no value: an Error, or NoData
// as the metric's noData policy says. side prefixes the message ("" for the
// canary, "primary: " for a compared side). It reports false when there is
// a value to judge.
func settle(res sluicev1beta1.CheckResult, m sluicev1beta1.CanaryMetric, got measurement, side string) (sluicev1beta1.CheckResult, bool) {
	switch {
	case got.err != nil:
		return failed(res, m, got.reason, fmt.Errorf("%s%w", side, got.err)), true
	case got.nan:
		// A provider that lets NaN through still never passes a check with it.
		res.Outcome, res.Message = sluicev1beta1.CheckNoData, side+"the query returned NaN"
		return res, true
	case !got.noData:
		return res, false
	}
	res.Message = side + "the query returned no data (is the canary receiving traffic?)"
	if side != "" {
		res.Message = side + "the query returned no data (is it receiving traffic?)"
	}
	switch m.NoData {
	case sluicev1beta1.PolicyPass:
		res.Outcome, res.Message = sluicev1beta1.CheckPassed, res.Message+"; counted as passed (noData: Pass)"
	case sluicev1beta1.PolicySkip:
		res.Outcome, res.Message = sluicev1beta1.CheckSkipped, res.Message+"; skipped (noData: Skip)"
	default:
		res.Outcome = sluicev1beta1.CheckNoData
	}
	return res, true
}

// failed ends a check in Error; onError: Hold holds the step instead of
// counting a failure, except for a dry run (it must not change the release)
// and an unsupported provider (waiting never fixes it).
func failed(res sluicev1beta1.CheckResult, m sluicev1beta1.CanaryMetric, reason string, err error) sluicev1beta1.CheckResult {
	res.Outcome, res.Reason, res.Message = sluicev1beta1.CheckError, reason, truncate(err.Error(), 1024)
	res.Held = m.OnError == sluicev1beta1.PolicyHold && reason != ReasonUnsupportedProvider && !m.DryRun
	return res
}

// judge compares a value with the metric's ranges: inside thresholdRange it
// passes (even where inconclusiveRange overlaps it), outside it but inside
// inconclusiveRange it is Inconclusive, outside both it fails.
func judge(m sluicev1beta1.CanaryMetric, value float64) (sluicev1beta1.CheckOutcome, string) {
	v := formatValue(value)
	lo, hi := bounds(m)
	pass := fmt.Sprintf("[%s, %s]", formatValue(lo), formatValue(hi))
	if !outside(value, lo, hi) {
		return sluicev1beta1.CheckPassed, fmt.Sprintf("%s %s is within %s", m.Name, v, pass)
	}
	r := m.InconclusiveRange
	if r == nil {
		return sluicev1beta1.CheckFailed, fmt.Sprintf("%s %s is outside %s", m.Name, v, pass)
	}
	ilo, ihi := math.Inf(-1), math.Inf(1)
	if r.Min != nil {
		ilo = *r.Min
	}
	if r.Max != nil {
		ihi = *r.Max
	}
	incl := fmt.Sprintf("[%s, %s]", formatValue(ilo), formatValue(ihi))
	if outside(value, ilo, ihi) {
		return sluicev1beta1.CheckFailed, fmt.Sprintf("%s %s is outside %s and inconclusiveRange %s", m.Name, v, pass, incl)
	}
	return sluicev1beta1.CheckInconclusive, fmt.Sprintf("%s %s is inconclusive: outside %s but within inconclusiveRange %s", m.Name, v, pass, incl)
}

// resolve finds the query template and the server of a metric.
func (k *Checker) resolve(ctx context.Context, c *sluicev1beta1.Canary, provider string, m sluicev1beta1.CanaryMetric) (target, string, error) {
	address := c.Spec.MetricsServer
	if address == "" {
		address = k.DefaultAddress
	}
	switch {
	case m.TemplateRef != nil:
		ns := m.TemplateRef.Namespace
		if ns == "" {
			ns = c.Namespace
		}
		mt := &sluicev1beta1.MetricTemplate{}
		if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.TemplateRef.Name}, mt); err != nil {
			if apierrors.IsNotFound(err) {
				return target{}, ReasonTemplateNotFound, fmt.Errorf("MetricTemplate %s/%s not found", ns, m.TemplateRef.Name)
			}
			return target{}, ReasonQueryFailed, fmt.Errorf("failed to get MetricTemplate %s/%s: %w", ns, m.TemplateRef.Name, err)
		}
		p := mt.Spec.Provider
		if _, ok := k.providers()[p.Type]; !ok {
			return target{}, ReasonUnsupportedProvider, fmt.Errorf("MetricTemplate %s/%s uses provider type %s; this controller queries: %s",
				ns, mt.Name, p.Type, strings.Join(k.providers().Types(), ", "))
		}
		// --metrics-server is a Prometheus: other backends default to
		// their own documented endpoints.
		if p.Type != "prometheus" {
			address = ""
		}
		if p.Address != "" {
			address = p.Address
		}
		return target{query: mt.Spec.Query, typ: p.Type, address: address, provider: &p, namespace: ns}, "", nil
	case m.Query != "":
		return target{query: m.Query, typ: "prometheus", address: address}, "", nil
	default:
		if k.Builtins == nil {
			return target{}, ReasonUnsupportedProvider, fmt.Errorf("provider %s has no builtin metric %s: measure it with a MetricTemplate (templateRef)", provider, m.Name)
		}
		q, err := k.Builtins.BuiltinQuery(provider, m.Name)
		if err != nil {
			return target{}, ReasonUnsupportedProvider, err
		}
		return target{query: q, typ: "prometheus", address: address}, "", nil
	}
}

func (k *Checker) providers() Providers {
	if k.Providers == nil {
		return DefaultProviders()
	}
	return k.Providers
}

// client returns the cached client of a target, rebuilt only when the type,
// the address, the headers or the credentials Secret changed.
func (k *Checker) client(ctx context.Context, t target) (Provider, []string, string, error) {
	factory, ok := k.providers()[t.typ]
	if !ok {
		return nil, nil, ReasonUnsupportedProvider, fmt.Errorf("provider type %s is not supported; this controller queries: %s", t.typ, strings.Join(k.providers().Types(), ", "))
	}
	cfg := ProviderConfig{Type: t.typ, Address: t.address}
	key, version := t.typ+"|"+t.address, ""
	var secretName string
	if p := t.provider; p != nil {
		cfg.Headers, cfg.InsecureSkipVerify, cfg.Region = p.Headers, p.InsecureSkipVerify, p.Region
		key += fmt.Sprintf("|%s|%v|%s", headersHash(p.Headers), p.InsecureSkipVerify, p.Region)
		if p.Method != "" || p.Body != "" {
			cfg.Method, cfg.Body = p.Method, p.Body
			key += "|" + p.Method + "|" + headersHash(map[string][]string{"body": {p.Body}})
		}
		if p.SecretRef != nil {
			secretName = p.SecretRef.Name
			meta := &metav1.PartialObjectMetadata{}
			meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
			if err := k.Client.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: secretName}, meta); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, nil, ReasonSecretNotFound, fmt.Errorf("the Secret %s/%s of the MetricTemplate was not found", t.namespace, secretName)
				}
				return nil, nil, ReasonQueryFailed, fmt.Errorf("failed to get Secret %s/%s: %w", t.namespace, secretName, err)
			}
			key += "|" + t.namespace + "/" + secretName
			version = meta.ResourceVersion
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cc, ok := k.clients[key]; ok && cc.version == version {
		return cc.provider, cc.secrets, "", nil
	}
	var secrets []string
	if secretName != "" {
		s := &corev1.Secret{}
		if err := k.SecretReader.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: secretName}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil, ReasonSecretNotFound, fmt.Errorf("the Secret %s/%s of the MetricTemplate was not found", t.namespace, secretName)
			}
			return nil, nil, ReasonQueryFailed, fmt.Errorf("failed to read Secret %s/%s: %w", t.namespace, secretName, err)
		}
		cfg.Secret = s.Data
		if cfg.Secret == nil {
			cfg.Secret = map[string][]byte{}
		}
		secrets = secretValues(s.Data)
	}
	prov, err := factory(ctx, cfg)
	if err != nil {
		reason := ReasonQueryFailed
		if errors.Is(err, ErrInvalidConfig) {
			reason = ReasonInvalidProviderConfig
		}
		if secretName != "" {
			err = fmt.Errorf("MetricTemplate provider %s with Secret %s/%s: %w", t.typ, t.namespace, secretName, err)
		}
		return nil, secrets, reason, err
	}
	if k.clients == nil {
		k.clients = map[string]cachedClient{}
	}
	k.clients[key] = cachedClient{version: version, provider: prov, secrets: secrets}
	return prov, secrets, "", nil
}

// bounds is the accepted range: thresholdRange, or Flagger's deprecated
// threshold (a minimum for request-success-rate, a maximum otherwise).
func bounds(m sluicev1beta1.CanaryMetric) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if r := m.ThresholdRange; r != nil {
		if r.Min != nil {
			lo = *r.Min
		}
		if r.Max != nil {
			hi = *r.Max
		}
		return lo, hi
	}
	if m.Threshold != 0 {
		if m.Name == sluicev1beta1.MetricRequestSuccessRate {
			return m.Threshold, hi
		}
		return lo, m.Threshold
	}
	return lo, hi
}

// outside compares with a relative tolerance, so that a ratio computed as
// 98.99999999999999 meets a minimum of 99, as its printed value says.
func outside(v, lo, hi float64) bool {
	tol := func(x float64) float64 { return 1e-9 * math.Max(1, math.Abs(x)) }
	return v < lo-tol(lo) || v > hi+tol(hi)
}

func formatValue(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

func headersHash(h map[string][]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sum := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(sum, "%s=%s\n", k, strings.Join(h[k], ","))
	}
	return hex.EncodeToString(sum.Sum(nil))[:12]
}

// redact replaces credentials in a text.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
