// Package newrelic runs NRQL queries through New Relic's Insights query API
// (GET /v1/accounts/{account}/query), as Flagger's newrelic provider does and
// with its Secret keys.
package newrelic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/saas"
)

// Secret keys, as Flagger names them.
const (
	AccountIDSecretKey = "newrelic_account_id"
	QueryKeySecretKey  = "newrelic_query_key" //nolint:gosec // G101: a Secret key's name, not a credential.
	queryKeyHeader     = "X-Query-Key"
)

// Regions maps provider.region to the Insights API host; no region is US.
var Regions = map[string]string{
	"us": "https://insights-api.newrelic.com",
	"eu": "https://insights-api.eu.newrelic.com",
}

// Provider queries one New Relic account.
type Provider struct {
	client   *saas.Client
	path     string
	queryKey string
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a New Relic client: the Secret holds newrelic_account_id and
// newrelic_query_key (an Insights query key); the address is
// provider.address, else the Insights API of provider.region (us or eu).
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	account, err := saas.SecretKey(cfg, "newrelic", AccountIDSecretKey)
	if err != nil {
		return nil, err
	}
	if _, err := strconv.ParseUint(account, 10, 64); err != nil {
		return nil, fmt.Errorf("%w: the Secret's key %s must be the numeric New Relic account ID", metrics.ErrInvalidConfig, AccountIDSecretKey)
	}
	queryKey, err := saas.SecretKey(cfg, "newrelic", QueryKeySecretKey)
	if err != nil {
		return nil, err
	}
	def := Regions["us"]
	if cfg.Region != "" {
		var ok bool
		if def, ok = Regions[cfg.Region]; !ok && cfg.Address == "" {
			return nil, fmt.Errorf("%w: newrelic has no region %q: set provider.region to us or eu, or provider.address", metrics.ErrInvalidConfig, cfg.Region)
		}
	}
	c, err := saas.New("newrelic", cfg.Address, def, cfg, queryKey)
	if err != nil {
		return nil, err
	}
	return &Provider{client: c, path: "/v1/accounts/" + account + "/query", queryKey: queryKey}, nil
}

// answer is the part of an Insights answer that is read: results, or
// facets each with results.
type answer struct {
	Results    []map[string]json.RawMessage `json:"results"`
	Facets     []facet                      `json:"facets"`
	TimeSeries json.RawMessage              `json:"timeSeries"`
}

type facet struct {
	Name    json.RawMessage              `json:"name"`
	Results []map[string]json.RawMessage `json:"results"`
}

// Query runs the NRQL query over the last metric interval (Flagger appends
// "SINCE <interval> seconds ago") and returns its one value.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	nrql := fmt.Sprintf("%s SINCE %d seconds ago", strings.TrimSpace(query), int64(metrics.IntervalFrom(ctx).Seconds()))
	var res answer
	err := p.client.Do(ctx, saas.Request{
		Method:       http.MethodGet,
		Path:         p.path,
		Query:        url.Values{"nrql": {nrql}},
		Header:       http.Header{queryKeyHeader: {p.queryKey}},
		ErrorMessage: saas.JSONErrors,
	}, &res)
	if err != nil {
		return 0, err
	}
	switch {
	case len(res.TimeSeries) > 0 && string(res.TimeSeries) != "null":
		return 0, fmt.Errorf("the NRQL query returned a time series: remove TIMESERIES, a check needs one value")
	case res.Facets != nil:
		switch len(res.Facets) {
		case 0:
			return 0, metrics.ErrNoData
		case 1:
			return value(res.Facets[0].Results)
		}
		names := make([]string, 0, len(res.Facets))
		for _, f := range res.Facets {
			names = append(names, string(bytes.Trim(f.Name, `"`)))
		}
		sort.Strings(names)
		return 0, &metrics.MultipleSeriesError{Series: names}
	}
	return value(res.Results)
}

// value is the one number of a result list: Flagger reads the key
// "result" (the value of an expression); an aggregate function's key is
// its name ("count", "average", "percentile" holding one percentile).
func value(results []map[string]json.RawMessage) (float64, error) {
	switch len(results) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		names := make([]string, 0, len(results))
		for _, r := range results {
			for k := range r {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		return 0, fmt.Errorf("the NRQL query selects %d values (%s): select one", len(results), strings.Join(names, ", "))
	}
	r := results[0]
	raw, ok := r["result"]
	if !ok {
		if len(r) != 1 {
			keys := make([]string, 0, len(r))
			for k := range r {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return 0, fmt.Errorf("the NRQL result has %d fields (%s), not one value", len(r), strings.Join(keys, ", "))
		}
		for _, v := range r {
			raw = v
		}
	}
	return number(raw)
}

// number reads a JSON number, null (no data) or an object holding exactly
// one number (percentile's {"99": 12.5}).
func number(raw json.RawMessage) (float64, error) {
	var f *float64
	if err := json.Unmarshal(raw, &f); err == nil {
		if f == nil || math.IsNaN(*f) {
			return 0, metrics.ErrNoData
		}
		return *f, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err == nil && len(o) == 1 {
		for _, v := range o {
			return number(v)
		}
	}
	return 0, fmt.Errorf("the NRQL result is not a number: select one numeric value")
}
