package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// MaxResponseBytes bounds how much of a Prometheus response is read.
const MaxResponseBytes = 8 << 20

// ErrNoData is a query that returned no series, or NaN.
var ErrNoData = errors.New("no data")

// MultipleSeriesError is a query that returned more than one series: it
// names them, and no value is picked.
type MultipleSeriesError struct{ Series []string }

func (e *MultipleSeriesError) Error() string {
	names := e.Series
	more := ""
	if len(names) > 3 {
		names, more = names[:3], fmt.Sprintf(" and %d more", len(e.Series)-3)
	}
	return fmt.Sprintf("the query returned %d series (%s%s): aggregate it to one, e.g. with sum()", len(e.Series), strings.Join(names, ", "), more)
}

// Credentials authenticate requests to Prometheus.
type Credentials struct {
	BearerToken string
	Username    string
	Password    string
}

// PrometheusConfig says how to reach a Prometheus server.
type PrometheusConfig struct {
	Address            string
	Credentials        Credentials
	Headers            http.Header
	InsecureSkipVerify bool
}

// Prometheus queries one Prometheus server.
type Prometheus struct {
	api promv1.API
}

// NewPrometheus builds a client; the configuration's headers are copied, never shared.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.InsecureSkipVerify {
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the MetricTemplate asks for it
	}
	rt := &authTransport{next: base, creds: cfg.Credentials, headers: cfg.Headers.Clone()}
	c, err := promapi.NewClient(promapi.Config{Address: cfg.Address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("invalid Prometheus address: %w", err)
	}
	return &Prometheus{api: promv1.NewAPI(c)}, nil
}

// Query runs an instant query and returns its single value.
func (p *Prometheus) Query(ctx context.Context, query string) (float64, error) {
	v, _, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return 0, fmt.Errorf("query failed: %w", err)
	}
	switch r := v.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, ErrNoData
		case 1:
			return valueOf(float64(r[0].Value))
		}
		series := make([]string, 0, len(r))
		for _, s := range r {
			series = append(series, s.Metric.String())
		}
		sort.Strings(series)
		return 0, &MultipleSeriesError{Series: series}
	case *model.Scalar:
		return valueOf(float64(r.Value))
	default:
		return 0, fmt.Errorf("the query returned a %s, not a single value", v.Type())
	}
}

func valueOf(f float64) (float64, error) {
	if math.IsNaN(f) {
		return 0, ErrNoData
	}
	return f, nil
}

// authTransport adds credentials and headers to each request, and bounds the
// response body.
type authTransport struct {
	next    http.RoundTripper
	creds   Credentials
	headers http.Header
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch {
	case t.creds.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+t.creds.BearerToken)
	case t.creds.Username != "":
		req.SetBasicAuth(t.creds.Username, t.creds.Password)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{Reader: io.LimitReader(resp.Body, MaxResponseBytes), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
