// Package graphite queries Graphite's render API (graphite-web, carbonapi,
// Grafana Cloud's Graphite) for one value, as Flagger's graphite provider
// does: the query is the render request's query string (target=...), its
// answer the last non-null datapoint of the one series it returns.
package graphite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/httpquery"
)

// Graphite queries one Graphite render API.
type Graphite struct {
	base     *url.URL
	username string
	password string
	headers  http.Header
	client   *http.Client
}

var _ metrics.Provider = (*Graphite)(nil)

// New builds a Graphite client: a metrics.Factory. Graphite is self-hosted,
// so spec.provider.address is required. The Secret, when the template names
// one, holds Flagger's keys username and password for basic auth, and then
// the address must be https:// (http:// on loopback only); without a Secret
// plain http:// is accepted, as Flagger's examples reach Graphite in the
// cluster.
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: graphite has no default address: set the MetricTemplate's provider.address, e.g. http://graphite.monitoring", metrics.ErrInvalidConfig)
	}
	g := &Graphite{headers: cfg.Headers.Clone(), client: httpquery.Client(cfg.InsecureSkipVerify)}
	if cfg.Secret != nil {
		for _, k := range []string{"username", "password"} {
			if len(cfg.Secret[k]) == 0 {
				return nil, fmt.Errorf("%w: the Secret has no key %s (graphite takes basic auth from the keys username and password)", metrics.ErrInvalidConfig, k)
			}
		}
		g.username, g.password = string(cfg.Secret["username"]), string(cfg.Secret["password"])
	}
	u, err := httpquery.Address("graphite", cfg.Address, cfg.Secret == nil)
	if err != nil {
		return nil, err
	}
	g.base = u
	return g, nil
}

var space = regexp.MustCompile(`\s+`)

// renderURL is the render request of a query: the query string Flagger's
// templates hold (target=...&from=...), written over several lines for
// reading, with format=json set.
func (g *Graphite) renderURL(query string) (string, error) {
	// Whitespace separates the parts of a multi-line template; Graphite's
	// function syntax has none that matters, as in Flagger.
	query = strings.TrimSpace(space.ReplaceAllString(query, " "))
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("the graphite query is not a render query string (target=...&from=...): %w", err)
	}
	clean := url.Values{}
	for k, vs := range params {
		for _, v := range vs {
			clean.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	if len(clean["target"]) == 0 {
		return "", fmt.Errorf("the graphite query has no target: write it as target=<expression>, optionally &from=-10min")
	}
	clean.Set("format", "json")
	u := *g.base
	u.Path = path.Join("/", u.Path, "render")
	u.RawQuery = clean.Encode()
	return u.String(), nil
}

// series is one target of a render answer.
type series struct {
	Target     string            `json:"target"`
	Datapoints []json.RawMessage `json:"datapoints"`
}

// Query runs a render request and returns the last non-null datapoint of its
// one series: no series, or only null datapoints, is metrics.ErrNoData;
// several series are a *metrics.MultipleSeriesError (aggregate them, e.g.
// with sumSeries).
func (g *Graphite) Query(ctx context.Context, query string) (float64, error) {
	u, err := g.renderURL(query)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("failed to build the graphite request: %w", err)
	}
	for k, vs := range g.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if g.username != "" {
		req.SetBasicAuth(g.username, g.password)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("graphite request failed: %w", httpquery.TransportError(err))
	}
	defer resp.Body.Close()
	body, err := httpquery.ReadBody(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("graphite: %w", err)
	}
	if resp.StatusCode >= 400 {
		return 0, httpquery.StatusError("graphite", resp.StatusCode, body, g.password)
	}
	var answer []series
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("graphite answered something other than a render JSON list of series: %w", err)
	}
	switch len(answer) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		names := make([]string, 0, len(answer))
		for _, s := range answer {
			names = append(names, s.Target)
		}
		return 0, &metrics.MultipleSeriesError{Series: names}
	}
	for i := len(answer[0].Datapoints) - 1; i >= 0; i-- {
		v, ok, err := datapoint(answer[0].Datapoints[i])
		if err != nil {
			return 0, fmt.Errorf("graphite series %s: %w", answer[0].Target, err)
		}
		if ok {
			return v, nil
		}
	}
	return 0, metrics.ErrNoData
}

// datapoint reads one [value, timestamp] pair: a null (or NaN) value has
// none. Some Graphite-compatible servers quote numbers.
func datapoint(raw json.RawMessage) (float64, bool, error) {
	var pair []any
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, false, fmt.Errorf("a datapoint is not a [value, timestamp] pair: %.64s", string(raw))
	}
	var v float64
	switch x := pair[0].(type) {
	case nil:
		return 0, false, nil
	case float64:
		v = x
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, false, fmt.Errorf("a datapoint value is not a number: %.64q", x)
		}
		v = f
	default:
		return 0, false, fmt.Errorf("a datapoint value is not a number: %.64s", string(raw))
	}
	if math.IsNaN(v) {
		return 0, false, nil
	}
	return v, true, nil
}
