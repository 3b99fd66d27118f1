// Package cloudwatch queries Amazon CloudWatch with GetMetricData, as
// Flagger's cloudwatch provider does: a MetricTemplate's query is the JSON
// array of MetricDataQueries, and the newest value of the one series it
// returns is the measurement.
package cloudwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/cloudhttp"
)

// Secret keys: the names of the AWS CLI's credentials file. Without a
// Secret the SDK's default chain is used (IRSA / EKS Pod Identity, the
// environment, the instance role), as in Flagger.
const (
	KeyAccessKeyID     = "aws_access_key_id"
	KeySecretAccessKey = "aws_secret_access_key" //nolint:gosec // the name of a Secret key, not a credential
	KeySessionToken    = "aws_session_token"
)

const (
	// maxDatapoints is Flagger's: enough for the newest value of any period.
	maxDatapoints = 20
	// lookbackPeriods is how many periods before now the query starts:
	// Flagger's ten metric intervals, or ten of the longest period of the
	// queries when that is longer, because CloudWatch publishes some
	// metrics minutes late.
	lookbackPeriods = 10
	// defaultPeriod is the period of queries that name none (expressions).
	defaultPeriod = 60 * time.Second
)

// Provider runs GetMetricData queries in one region.
type Provider struct {
	client *cw.Client
	now    func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a CloudWatch client for provider.region. provider.address
// overrides the regional endpoint (https://monitoring.<region>.amazonaws.com).
// It makes no request: credentials from the default chain are resolved at
// the first query.
func New(ctx context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: cloudwatch needs the MetricTemplate's provider.region (e.g. us-east-1)", metrics.ErrInvalidConfig)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		// One attempt: the Checker's per-query timeout would be spent in
		// backoff, and the analysis asks again at its next interval.
		config.WithRetryMaxAttempts(1),
	}
	if cfg.Secret != nil {
		id, key := string(cfg.Secret[KeyAccessKeyID]), string(cfg.Secret[KeySecretAccessKey])
		switch {
		case id == "":
			return nil, fmt.Errorf("%w: the Secret has no key %s (leave out secretRef to use the pod's AWS identity)", metrics.ErrInvalidConfig, KeyAccessKeyID)
		case key == "":
			return nil, fmt.Errorf("%w: the Secret has no key %s", metrics.ErrInvalidConfig, KeySecretAccessKey)
		}
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, key, string(cfg.Secret[KeySessionToken]))))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to load the AWS configuration: %w", metrics.ErrInvalidConfig, err)
	}
	var endpoint string
	if cfg.Address != "" {
		if endpoint, err = cloudhttp.Endpoint(cfg.Address, ""); err != nil {
			return nil, fmt.Errorf("%w: %w", metrics.ErrInvalidConfig, err)
		}
	}
	// The bounded client is CloudWatch's only: the credential chain (STS
	// for IRSA, IMDS) keeps the SDK's client and its CA bundle settings.
	client := cw.NewFromConfig(awsCfg, func(o *cw.Options) {
		o.HTTPClient = cloudhttp.Client(cfg.InsecureSkipVerify, cfg.Headers)
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &Provider{client: client, now: time.Now}, nil
}

// Query runs the MetricDataQueries of query over the last ten metric
// intervals (or periods, when longer) and
// returns the newest value of the one result.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	queries, err := parseQuery(query)
	if err != nil {
		return 0, err
	}
	end := p.now().UTC().Truncate(time.Second)
	out, err := p.client.GetMetricData(ctx, &cw.GetMetricDataInput{
		StartTime:         aws.Time(end.Add(-lookbackPeriods * max(metrics.IntervalFrom(ctx), longestPeriod(queries)))),
		EndTime:           aws.Time(end),
		MaxDatapoints:     aws.Int32(maxDatapoints),
		ScanBy:            types.ScanByTimestampDescending,
		MetricDataQueries: queries,
	})
	if err != nil {
		return 0, apiError(err)
	}
	return value(out)
}

// parseQuery reads Flagger's query: a JSON array of MetricDataQuery with
// the API's field names (Id, MetricStat, Expression, Label, ReturnData,
// Period, AccountId). Unknown fields are refused, so a typo is an error
// rather than a silently different query.
func parseQuery(query string) ([]types.MetricDataQuery, error) {
	dec := json.NewDecoder(strings.NewReader(query))
	dec.DisallowUnknownFields()
	var queries []types.MetricDataQuery
	if err := dec.Decode(&queries); err != nil {
		return nil, fmt.Errorf("the query must be a JSON array of CloudWatch MetricDataQuery objects: %w", err)
	}
	if len(queries) == 0 {
		return nil, errors.New("the query is an empty array: it needs at least one MetricDataQuery")
	}
	return queries, nil
}

func longestPeriod(queries []types.MetricDataQuery) time.Duration {
	var longest int32
	for _, q := range queries {
		if q.Period != nil && *q.Period > longest {
			longest = *q.Period
		}
		if q.MetricStat != nil && q.MetricStat.Period != nil && *q.MetricStat.Period > longest {
			longest = *q.MetricStat.Period
		}
	}
	if longest <= 0 {
		return defaultPeriod
	}
	return time.Duration(longest) * time.Second
}

// value is the newest value of the one result. CloudWatch returns a result
// for each query with ReturnData (true by default), so two results are two
// series and none is picked.
func value(out *cw.GetMetricDataOutput) (float64, error) {
	results := out.MetricDataResults
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("%w: GetMetricData returned no result", metrics.ErrNoData)
	case 1:
	default:
		series := make([]string, 0, len(results))
		for _, r := range results {
			series = append(series, fmt.Sprintf("%s (%s)", aws.ToString(r.Id), aws.ToString(r.Label)))
		}
		return 0, &metrics.MultipleSeriesError{Series: series}
	}
	r := results[0]
	if r.StatusCode == types.StatusCodeInternalError || r.StatusCode == types.StatusCodeForbidden {
		return 0, fmt.Errorf("CloudWatch returned status %s for %s: %s", r.StatusCode, aws.ToString(r.Id), messages(r.Messages, out.Messages))
	}
	if len(r.Values) == 0 {
		return 0, fmt.Errorf("%w: %s has no datapoint in the queried range", metrics.ErrNoData, aws.ToString(r.Id))
	}
	v := r.Values[0] // ScanBy TimestampDescending: the newest
	if math.IsNaN(v) {
		return 0, metrics.ErrNoData
	}
	return v, nil
}

func messages(lists ...[]types.MessageData) string {
	var b bytes.Buffer
	for _, l := range lists {
		for _, m := range l {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", aws.ToString(m.Code), aws.ToString(m.Value))
		}
	}
	if b.Len() == 0 {
		return "no message"
	}
	return cloudhttp.Excerpt(b.String())
}

// apiError quotes CloudWatch's error code and message with the HTTP status.
// The SDK never puts the secret key in an error; the access key ID appears
// only in CloudWatch's own messages about it, which the Checker redacts.
func apiError(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("CloudWatch GetMetricData failed: %w", err)
	}
	status := 0
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return &Error{StatusCode: status, Code: apiErr.ErrorCode(), Message: cloudhttp.Excerpt(apiErr.ErrorMessage())}
}

// Error is an error answer of CloudWatch.
type Error struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("CloudWatch GetMetricData failed: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}
