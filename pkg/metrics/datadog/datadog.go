// Package datadog queries Datadog's metrics API (GET /api/v1/query) with
// Datadog's official Go client, as Flagger's datadog provider does and with
// its Secret keys.
package datadog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/saas"
)

// Secret keys, as Flagger names them.
const (
	APIKeySecretKey         = "datadog_api_key"         //nolint:gosec // G101: a Secret key's name, not a credential.
	ApplicationKeySecretKey = "datadog_application_key" //nolint:gosec // G101: a Secret key's name, not a credential.
)

// windowIntervals is how many metric intervals the query covers: Flagger's
// from = now - 10 × interval, so that a sparse metric still has a point.
const windowIntervals = 10

// Sites maps provider.region to the API host of each Datadog site (the
// region field takes no dots, so sites go by their short names). No region
// is US1, api.datadoghq.com.
var Sites = map[string]string{
	"us1":     "https://api.datadoghq.com",
	"us3":     "https://api.us3.datadoghq.com",
	"us5":     "https://api.us5.datadoghq.com",
	"eu1":     "https://api.datadoghq.eu",
	"ap1":     "https://api.ap1.datadoghq.com",
	"ap2":     "https://api.ap2.datadoghq.com",
	"uk1":     "https://api.uk1.datadoghq.com",
	"us1-fed": "https://api.ddog-gov.com",
	"us2-fed": "https://api.us2.ddog-gov.com",
}

// Provider queries one Datadog site.
type Provider struct {
	api     *datadogV1.MetricsApi
	base    *url.URL
	keys    map[string]datadog.APIKey
	secrets []string
	now     func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a Datadog client: the Secret holds datadog_api_key and
// datadog_application_key; the address is provider.address, else the API
// host of the site named by provider.region (default us1).
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	apiKey, err := saas.SecretKey(cfg, "datadog", APIKeySecretKey)
	if err != nil {
		return nil, err
	}
	appKey, err := saas.SecretKey(cfg, "datadog", ApplicationKeySecretKey)
	if err != nil {
		return nil, err
	}
	def := Sites["us1"]
	if cfg.Region != "" {
		var ok bool
		if def, ok = Sites[cfg.Region]; !ok && cfg.Address == "" {
			return nil, fmt.Errorf("%w: datadog has no site %q: set provider.region to one of %s, or provider.address", metrics.ErrInvalidConfig, cfg.Region, strings.Join(siteNames(), ", "))
		}
	}
	base, err := saas.BaseURL(cfg.Address, def)
	if err != nil {
		return nil, fmt.Errorf("%w: datadog: %w", metrics.ErrInvalidConfig, err)
	}
	dc := datadog.NewConfiguration()
	dc.HTTPClient = saas.HTTPClient(base, cfg)
	// The client retries nothing (the Checker's next interval is the
	// retry) and never logs: Debug stays off.
	dc.RetryConfiguration.EnableRetry = false
	for k, vs := range cfg.Headers {
		if len(vs) > 0 {
			dc.AddDefaultHeader(k, strings.Join(vs, ", "))
		}
	}
	return &Provider{
		api:  datadogV1.NewMetricsApi(datadog.NewAPIClient(dc)),
		base: base,
		keys: map[string]datadog.APIKey{
			"apiKeyAuth": {Key: apiKey},
			"appKeyAuth": {Key: appKey},
		},
		secrets: []string{apiKey, appKey},
		now:     time.Now,
	}, nil
}

func siteNames() []string {
	out := make([]string, 0, len(Sites))
	for k := range Sites {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Query runs a metrics query over the last 10 metric intervals and returns
// the newest non-null point of its one series.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	to := p.now()
	from := to.Add(-windowIntervals * metrics.IntervalFrom(ctx))
	// The client's "{protocol}://{name}" server takes any address, the
	// site's or provider.address.
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, 1)
	ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{
		"protocol": p.base.Scheme, "name": p.base.Host + p.base.Path})
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, p.keys)
	res, resp, err := p.api.QueryMetrics(ctx, from.Unix(), to.Unix(), query)
	if err != nil {
		return 0, p.failure(resp, err)
	}
	// A query Datadog cannot run may still answer 200 with status "error".
	if res.GetStatus() == "error" || res.GetError() != "" {
		msg := res.GetError()
		if msg == "" {
			msg = "status error"
		}
		return 0, fmt.Errorf("datadog could not run the query: %s", saas.Quote(msg, p.secrets))
	}
	switch len(res.Series) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		names := make([]string, 0, len(res.Series))
		for _, s := range res.Series {
			names = append(names, seriesName(s))
		}
		sort.Strings(names)
		return 0, &metrics.MultipleSeriesError{Series: names}
	}
	pl := res.Series[0].Pointlist
	for i := len(pl) - 1; i >= 0; i-- {
		// A point is [timestamp ms, value]; the value is null in a gap.
		if len(pl[i]) == 2 && pl[i][1] != nil && !math.IsNaN(*pl[i][1]) {
			return *pl[i][1], nil
		}
	}
	return 0, metrics.ErrNoData
}

// failure is the error of a request the client could not complete: it
// quotes Datadog's message (the "errors" list of its error answers), never
// a key.
func (p *Provider) failure(resp *http.Response, err error) error {
	if errors.Is(err, saas.ErrTooLarge) {
		return fmt.Errorf("datadog: %w", saas.ErrTooLarge)
	}
	var apiErr datadog.GenericOpenAPIError
	if !errors.As(err, &apiErr) {
		// Transport errors (url.Error quotes the URL with the query, never
		// a header), timeouts, cancellation: wrapped unless the text holds
		// a key.
		if msg := saas.Quote(err.Error(), p.secrets); msg != strings.TrimSpace(err.Error()) {
			return fmt.Errorf("datadog request failed: %s", msg)
		}
		return fmt.Errorf("datadog request failed: %w", err)
	}
	if resp == nil || resp.StatusCode < 300 {
		// A 2xx answer the client could not decode.
		return fmt.Errorf("malformed datadog answer: %s", saas.Quote(apiErr.ErrorMessage, p.secrets))
	}
	msg := ""
	if m, ok := apiErr.ErrorModel.(datadogV1.APIErrorResponse); ok {
		msg = strings.Join(m.Errors, "; ")
	}
	if msg == "" {
		msg = saas.JSONErrors(apiErr.ErrorBody)
	}
	if msg == "" {
		msg = string(apiErr.ErrorBody)
	}
	if msg = saas.Quote(msg, p.secrets); msg == "" {
		return fmt.Errorf("datadog answered %s", resp.Status)
	}
	return fmt.Errorf("datadog answered %s: %s", resp.Status, msg)
}

// seriesName identifies a series by its expression and tags.
func seriesName(s datadogV1.MetricsQueryMetadata) string {
	switch {
	case len(s.TagSet) > 0:
		return s.GetExpression() + "{" + strings.Join(s.TagSet, ",") + "}"
	case s.GetScope() != "":
		return s.GetExpression() + "{" + s.GetScope() + "}"
	}
	return s.GetExpression()
}
