// Package dynatrace queries Dynatrace's Metrics API v2
// (GET /api/v2/metrics/query), as Flagger's dynatrace provider does and with
// its Secret key.
package dynatrace

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/saas"
)

// TokenSecretKey is the Secret key of the API token (scope metrics.read), as
// Flagger names it.
const TokenSecretKey = "dynatrace_token" //nolint:gosec // G101: a Secret key's name, not a credential.

// windowIntervals is how many metric intervals the query covers: Flagger's
// from = now - 10 × interval.
const windowIntervals = 10

// Provider queries one Dynatrace environment.
type Provider struct {
	client *saas.Client
	token  string
	now    func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a Dynatrace client: the Secret holds dynatrace_token and
// provider.address is the environment's URL (each tenant has its own, so
// there is no default).
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	token, err := saas.SecretKey(cfg, "dynatrace", TokenSecretKey)
	if err != nil {
		return nil, err
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: dynatrace has no default address: set provider.address to the environment URL, e.g. https://{environment-id}.live.dynatrace.com", metrics.ErrInvalidConfig)
	}
	c, err := saas.New("dynatrace", cfg.Address, "", cfg, token)
	if err != nil {
		return nil, err
	}
	return &Provider{client: c, token: token, now: time.Now}, nil
}

// answer is the part of a /api/v2/metrics/query answer that is read.
type answer struct {
	Result []struct {
		MetricID string `json:"metricId"`
		Data     []struct {
			DimensionMap map[string]string `json:"dimensionMap"`
			Values       []*float64        `json:"values"`
		} `json:"data"`
	} `json:"result"`
}

// Query runs a metric selector over the last 10 metric intervals at
// resolution Inf (one value per series) and returns the one value.
func (p *Provider) Query(ctx context.Context, selector string) (float64, error) {
	to := p.now()
	from := to.Add(-windowIntervals * metrics.IntervalFrom(ctx))
	var res answer
	err := p.client.Do(ctx, saas.Request{
		Method: http.MethodGet,
		Path:   "/api/v2/metrics/query",
		Query: url.Values{
			"metricSelector": {strings.TrimSpace(selector)},
			"resolution":     {"Inf"},
			"from":           {strconv.FormatInt(from.UnixMilli(), 10)},
			"to":             {strconv.FormatInt(to.UnixMilli(), 10)},
		},
		Header:       http.Header{"Authorization": {"Api-Token " + p.token}},
		ErrorMessage: errorMessage,
	}, &res)
	if err != nil {
		return 0, err
	}
	switch len(res.Result) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		ids := make([]string, 0, len(res.Result))
		for _, r := range res.Result {
			ids = append(ids, r.MetricID)
		}
		sort.Strings(ids)
		return 0, &metrics.MultipleSeriesError{Series: ids}
	}
	data := res.Result[0].Data
	switch len(data) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		names := make([]string, 0, len(data))
		for _, d := range data {
			names = append(names, res.Result[0].MetricID+dimensions(d.DimensionMap))
		}
		sort.Strings(names)
		return 0, &metrics.MultipleSeriesError{Series: names}
	}
	vs := data[0].Values
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i] != nil && !math.IsNaN(*vs[i]) {
			return *vs[i], nil
		}
	}
	return 0, metrics.ErrNoData
}

// dimensions formats a dimension map as {k="v",...}, sorted.
func dimensions(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// errorMessage reads Dynatrace's error answer: {"error": {"code", "message",
// "constraintViolations": [{"path", "message"}]}}.
func errorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message    string `json:"message"`
			Violations []struct {
				Path    string `json:"path"`
				Message string `json:"message"`
			} `json:"constraintViolations"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	msg := e.Error.Message
	for _, v := range e.Error.Violations {
		if v.Path != "" {
			msg += " " + v.Path + ": " + v.Message
		} else {
			msg += " " + v.Message
		}
	}
	return msg
}
