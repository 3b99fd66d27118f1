// Package stackdriver queries Google Cloud Monitoring with a Monitoring
// Query Language (MQL) query, as Flagger's stackdriver provider does, over
// the REST form of the same API call (projects.timeSeries.query) rather
// than the gRPC client: the request is one JSON POST, and the manager links
// no generated gRPC stubs for it.
package stackdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/cloudhttp"
)

// Flagger's Secret keys.
const (
	// KeyProject is the Google Cloud project queried (required).
	KeyProject = "project"
	// KeyServiceAccountKey is a service account's JSON key (optional:
	// without it, Application Default Credentials, e.g. Workload Identity).
	KeyServiceAccountKey = "serviceAccountKey"
)

// DefaultAddress is Cloud Monitoring's documented endpoint.
const DefaultAddress = "https://monitoring.googleapis.com"

// Scope is the OAuth2 scope of read-only monitoring queries.
const Scope = "https://www.googleapis.com/auth/monitoring.read"

// tokenTimeout bounds a token request: the token source outlives the
// query's context, so it cannot take that deadline.
const tokenTimeout = 10 * time.Second

// Provider runs MQL queries in one project.
type Provider struct {
	endpoint string // .../v3/projects/<project>/timeSeries:query
	client   *http.Client
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a Cloud Monitoring client from the Secret's project and,
// when present, serviceAccountKey (a key of type service_account only: other
// credential types can make the controller fetch URLs or run commands named
// in the file). provider.address overrides https://monitoring.googleapis.com.
func New(ctx context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	if cfg.Secret == nil {
		return nil, fmt.Errorf("%w: stackdriver needs provider.secretRef: a Secret with the key %s (and %s unless the controller has Workload Identity)",
			metrics.ErrInvalidConfig, KeyProject, KeyServiceAccountKey)
	}
	project := strings.TrimSpace(string(cfg.Secret[KeyProject]))
	if project == "" {
		return nil, fmt.Errorf("%w: the Secret has no key %s (the Google Cloud project ID)", metrics.ErrInvalidConfig, KeyProject)
	}
	base, err := cloudhttp.Endpoint(cfg.Address, DefaultAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", metrics.ErrInvalidConfig, err)
	}
	// Token requests get a bounded client of their own, with a deadline.
	tokenClient := cloudhttp.Client(false, nil)
	tokenClient.Timeout = tokenTimeout
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, tokenClient)
	var creds *google.Credentials
	if key := cfg.Secret[KeyServiceAccountKey]; len(key) > 0 {
		creds, err = google.CredentialsFromJSONWithType(tctx, key, google.ServiceAccount, Scope)
		if err != nil {
			// The parser's errors quote no key material, but say only
			// what is wrong with the value.
			return nil, fmt.Errorf("%w: the Secret's key %s is not a Google service account JSON key (type service_account): %s",
				metrics.ErrInvalidConfig, KeyServiceAccountKey, describe(err))
		}
	} else {
		creds, err = google.FindDefaultCredentials(tctx, Scope)
		if err != nil {
			return nil, fmt.Errorf("%w: the Secret has no key %s and no Application Default Credentials were found: %w",
				metrics.ErrInvalidConfig, KeyServiceAccountKey, err)
		}
	}
	client := cloudhttp.Client(cfg.InsecureSkipVerify, cfg.Headers)
	client.Transport = &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, creds.TokenSource), Base: client.Transport}
	return &Provider{
		endpoint: base + "/v3/projects/" + url.PathEscape(project) + "/timeSeries:query",
		client:   client,
	}, nil
}

// describe keeps the kind of a JSON key error and drops anything quoted
// from the key itself.
func describe(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return "invalid JSON"
	}
	msg := err.Error()
	if strings.Contains(msg, "PRIVATE KEY") || len(msg) > 200 {
		return "unusable key"
	}
	return msg
}

// queryResponse is the QueryTimeSeriesResponse of the REST API.
type queryResponse struct {
	TimeSeriesDescriptor struct {
		LabelDescriptors []struct {
			Key string `json:"key"`
		} `json:"labelDescriptors"`
	} `json:"timeSeriesDescriptor"`
	TimeSeriesData []struct {
		LabelValues []labelValue `json:"labelValues"`
		PointData   []struct {
			Values []typedValue `json:"values"`
		} `json:"pointData"`
	} `json:"timeSeriesData"`
	NextPageToken string `json:"nextPageToken"`
	PartialErrors []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"partialErrors"`
}

type labelValue struct {
	StringValue *string          `json:"stringValue"`
	Int64Value  *json.RawMessage `json:"int64Value"`
	BoolValue   *bool            `json:"boolValue"`
}

func (l labelValue) String() string {
	switch {
	case l.StringValue != nil:
		return *l.StringValue
	case l.Int64Value != nil:
		return strings.Trim(string(*l.Int64Value), `"`)
	case l.BoolValue != nil:
		return strconv.FormatBool(*l.BoolValue)
	}
	return ""
}

// typedValue is a point's value: int64 values are JSON strings, as in every
// Google REST API.
type typedValue struct {
	DoubleValue       *float64         `json:"doubleValue"`
	Int64Value        *string          `json:"int64Value"`
	BoolValue         *bool            `json:"boolValue"`
	StringValue       *string          `json:"stringValue"`
	DistributionValue *json.RawMessage `json:"distributionValue"`
}

// Query runs an MQL query and returns the newest value of its one series.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return 0, fmt.Errorf("failed to encode the query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("failed to build the Cloud Monitoring request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the Cloud Monitoring query failed: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("failed to read the Cloud Monitoring response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, apiError(resp.StatusCode, data)
	}
	var r queryResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("the Cloud Monitoring response is not a QueryTimeSeriesResponse: %w", err)
	}
	return value(&r)
}

func value(r *queryResponse) (float64, error) {
	series := r.TimeSeriesData
	if len(series) == 0 {
		if len(r.PartialErrors) > 0 {
			return 0, fmt.Errorf("the Cloud Monitoring query returned no series and an error: %s", cloudhttp.Excerpt(r.PartialErrors[0].Message))
		}
		return 0, fmt.Errorf("%w: the query returned no time series", metrics.ErrNoData)
	}
	if len(series) > 1 || r.NextPageToken != "" {
		names := make([]string, 0, len(series)+1)
		for _, s := range series {
			names = append(names, seriesName(r, s.LabelValues))
		}
		if r.NextPageToken != "" {
			names = append(names, "more on further pages")
		}
		return 0, &metrics.MultipleSeriesError{Series: names}
	}
	points := series[0].PointData
	if len(points) == 0 || len(points[0].Values) == 0 {
		return 0, fmt.Errorf("%w: the time series has no point", metrics.ErrNoData)
	}
	// The newest point comes first; its first value column is measured,
	// as in Flagger.
	v := points[0].Values[0]
	switch {
	case v.DoubleValue != nil:
		if math.IsNaN(*v.DoubleValue) {
			return 0, metrics.ErrNoData
		}
		return *v.DoubleValue, nil
	case v.Int64Value != nil:
		i, err := strconv.ParseInt(*v.Int64Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("the point's int64Value %q is not an integer: %w", cloudhttp.Excerpt(*v.Int64Value), err)
		}
		return float64(i), nil
	case v.BoolValue != nil:
		if *v.BoolValue {
			return 1, nil
		}
		return 0, nil
	case v.DistributionValue != nil:
		return 0, errors.New("the query returned a distribution: reduce it to a number, e.g. with | value percentile(val(), 99)")
	case v.StringValue != nil:
		return 0, errors.New("the query returned a string value, not a number")
	}
	return 0, fmt.Errorf("%w: the point has no value", metrics.ErrNoData)
}

// seriesName is a series' labels as key=value, from the descriptor's keys.
func seriesName(r *queryResponse, values []labelValue) string {
	parts := make([]string, 0, len(values))
	for i, v := range values {
		key := strconv.Itoa(i)
		if i < len(r.TimeSeriesDescriptor.LabelDescriptors) {
			key = r.TimeSeriesDescriptor.LabelDescriptors[i].Key
		}
		parts = append(parts, key+"="+strconv.Quote(v.String()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// apiError quotes Google's error: {"error": {"code", "message", "status"}}.
func apiError(status int, body []byte) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err == nil && e.Error.Message != "" {
		return fmt.Errorf("the Cloud Monitoring API answered HTTP %d %s: %s", status, e.Error.Status, cloudhttp.Excerpt(e.Error.Message))
	}
	return fmt.Errorf("the Cloud Monitoring API answered HTTP %d: %s", status, cloudhttp.Excerpt(string(body)))
}
