// Package influxdb runs Flux queries against InfluxDB's /api/v2/query (InfluxDB
// 2 and 3, InfluxDB Cloud, and InfluxDB 1.8+ with flux-enabled) through the
// official client, github.com/influxdata/influxdb-client-go/v2, as Flagger's
// influxdb provider does.
package influxdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/httpquery"
)

// InfluxDB queries one InfluxDB server.
type InfluxDB struct {
	query api.QueryAPI
	token string
}

var _ metrics.Provider = (*InfluxDB)(nil)

// New builds an InfluxDB client: a metrics.Factory. InfluxDB is self-hosted
// or a regional Cloud URL, so spec.provider.address is required. The Secret,
// when named, holds Flagger's keys token and org (both required); the
// address must then be https:// (http:// on loopback only). Without a Secret
// plain http:// is accepted (an in-cluster InfluxDB without authentication).
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: influxdb has no default address: set the MetricTemplate's provider.address, e.g. http://influxdb.monitoring:8086 or your InfluxDB Cloud region's URL", metrics.ErrInvalidConfig)
	}
	var token, org string
	if cfg.Secret != nil {
		for _, k := range []string{"token", "org"} {
			if len(cfg.Secret[k]) == 0 {
				return nil, fmt.Errorf("%w: the Secret has no key %s (influxdb reads the API token from the key token and the organization from org)", metrics.ErrInvalidConfig, k)
			}
		}
		token, org = string(cfg.Secret["token"]), string(cfg.Secret["org"])
	}
	u, err := httpquery.Address("influxdb", cfg.Address, cfg.Secret == nil)
	if err != nil {
		return nil, err
	}
	hc := httpquery.Headers(httpquery.Bounded(httpquery.Client(cfg.InsecureSkipVerify)), cfg.Headers)
	// Log level 0: the client logs nothing of its own (its info level
	// prints every request URL); errors come back to the Checker.
	opts := influxdb2.DefaultOptions().SetHTTPClient(hc).SetLogLevel(0)
	c := influxdb2.NewClientWithOptions(strings.TrimSuffix(u.String(), "/"), token, opts)
	return &InfluxDB{query: c.QueryAPI(org), token: token}, nil
}

// Query runs a Flux query and returns the _value of its one record: no
// record, or a null _value, is metrics.ErrNoData; several records (several
// tables, or several rows) are a *metrics.MultipleSeriesError naming their
// group keys: end the query with last(), sum() or another aggregate.
func (i *InfluxDB) Query(ctx context.Context, flux string) (float64, error) {
	res, err := i.query.Query(ctx, flux)
	if err != nil {
		return 0, i.queryError(err)
	}
	defer res.Close()
	var (
		value  any
		found  bool
		series []string
	)
	for res.Next() {
		r := res.Record()
		series = append(series, groupKey(res.TableMetadata(), r))
		if found {
			continue
		}
		v, ok := r.Values()["_value"]
		if !ok {
			return 0, errors.New("the Flux result has no _value column: keep it (e.g. do not rename it) or map the value to _value")
		}
		value, found = v, true
	}
	if err := res.Err(); err != nil {
		return 0, i.queryError(err)
	}
	switch len(series) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
		return number(value)
	}
	sort.Strings(series)
	return 0, &metrics.MultipleSeriesError{Series: series}
}

// queryError turns the client's errors into one line with InfluxDB's own
// message, bounded and without the token.
func (i *InfluxDB) queryError(err error) error {
	var herr *influxhttp.Error
	if errors.As(err, &herr) && herr.StatusCode != 0 && herr.Err == nil {
		msg := herr.Message
		if herr.Code != "" && !strings.HasPrefix(herr.Code, fmt.Sprint(herr.StatusCode)) {
			msg = herr.Code + ": " + msg
		}
		return httpquery.StatusError("influxdb", herr.StatusCode, []byte(msg), i.token)
	}
	if errors.Is(err, httpquery.ErrTooLarge) {
		return fmt.Errorf("influxdb: %w", httpquery.ErrTooLarge)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("influxdb query failed: %w", err)
	}
	msg := httpquery.TransportError(err).Error()
	if i.token != "" {
		msg = strings.ReplaceAll(msg, i.token, "***")
	}
	return fmt.Errorf("influxdb query failed: %s", strings.Join(strings.Fields(msg), " "))
}

// groupKey names a record by its table and the values of its group key
// columns, other than the query's time bounds.
func groupKey(t *query.FluxTableMetadata, r *query.FluxRecord) string {
	var parts []string
	if t != nil {
		for _, c := range t.Columns() {
			if !c.IsGroup() || c.Name() == "_start" || c.Name() == "_stop" {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s=%v", c.Name(), r.ValueByKey(c.Name())))
		}
	}
	return fmt.Sprintf("table %d {%s}", r.Table(), strings.Join(parts, ", "))
}

// number converts a Flux _value: double, long (count()) or unsignedLong.
func number(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, metrics.ErrNoData
	case float64:
		if math.IsNaN(x) {
			return 0, metrics.ErrNoData
		}
		return x, nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("the Flux _value is a %T (%.64v), not a number", v, v)
}
