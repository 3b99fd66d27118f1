// Package splunk runs SignalFlow programs on Splunk Observability Cloud
// (formerly SignalFx) with Flagger's Secret key. Flagger uses SignalFlow's
// WebSocket interface; this provider uses its HTTP interface (POST
// /v2/signalflow/execute, answered with server-sent events), which runs the
// same computation with plain net/http and JSON data messages.
package splunk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// TokenSecretKey is the Secret key of the access token, as Flagger names it.
const TokenSecretKey = "sf_token_key" //nolint:gosec // G101: a Secret key's name, not a credential.

// windowIntervals is how many metric intervals the computation covers:
// Flagger's start = now - 10 × interval.
const windowIntervals = 10

// maxEventBytes bounds one server-sent event line.
const maxEventBytes = 1 << 20

// Provider runs SignalFlow programs in one realm.
type Provider struct {
	client *saas.Client
	token  string
	now    func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New builds a Splunk Observability client: the Secret holds sf_token_key;
// the address is provider.address (Flagger's https://api.{realm}.signalfx.com
// is read as its stream.{realm} host, where SignalFlow runs), else the
// stream endpoint of provider.region, the realm (default us0).
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	token, err := saas.SecretKey(cfg, "splunk", TokenSecretKey)
	if err != nil {
		return nil, err
	}
	realm := cfg.Region
	if realm == "" {
		realm = "us0"
	}
	address := cfg.Address
	if address != "" {
		u, err := saas.BaseURL(address, "")
		if err != nil {
			return nil, fmt.Errorf("%w: splunk: %w", metrics.ErrInvalidConfig, err)
		}
		// SignalFlow is served by the stream host, the REST API by the
		// api host: Flagger's templates name the latter.
		if rest, ok := strings.CutPrefix(u.Host, "api."); ok {
			u.Host = "stream." + rest
		}
		address = u.String()
	}
	c, err := saas.New("splunk", address, "https://stream."+realm+".signalfx.com", cfg, token)
	if err != nil {
		return nil, err
	}
	return &Provider{client: c, token: token, now: time.Now}, nil
}

// point is one value of a data message.
type point struct {
	TSID  string   `json:"tsId"`
	Value *float64 `json:"value"`
}

// message is the JSON of a server-sent event: data, control, error and
// metadata messages share it.
type message struct {
	Type      string  `json:"type"`
	Event     string  `json:"event"`
	Data      []point `json:"data"`
	Message   string  `json:"message"`
	ErrorType string  `json:"errorType"`
	TSID      string  `json:"tsId"`
	// Properties of a metadata message name its time series.
	Properties map[string]any `json:"properties"`
}

// Query runs a SignalFlow program over the last 10 metric intervals
// (immediate: the computation ends at now instead of waiting for data) and
// returns the newest value of its one published time series.
func (p *Provider) Query(ctx context.Context, program string) (float64, error) {
	stop := p.now()
	start := stop.Add(-windowIntervals * metrics.IntervalFrom(ctx))
	var (
		last  *float64
		names = map[string]string{} // tsId -> name, from metadata messages
		seen  = map[string]bool{}   // tsIds that have a value
	)
	err := p.client.Stream(ctx, saas.Request{
		Method: http.MethodPost,
		Path:   "/v2/signalflow/execute",
		Query: url.Values{
			"start":     {strconv.FormatInt(start.UnixMilli(), 10)},
			"stop":      {strconv.FormatInt(stop.UnixMilli(), 10)},
			"immediate": {"true"},
		},
		Text:         strings.TrimSpace(program),
		Accept:       "text/event-stream",
		Header:       http.Header{"X-SF-Token": {p.token}},
		ErrorMessage: saas.JSONErrors,
	}, func(body io.Reader) error {
		return readEvents(body, func(event string, m message) error {
			switch {
			case event == "error" || m.Type == "error":
				return fmt.Errorf("splunk could not run the program: %s", strings.TrimSpace(m.ErrorType+" "+m.Message))
			case m.Event == "CHANNEL_ABORT":
				return fmt.Errorf("splunk aborted the computation: %s", m.Message)
			case event == "metadata" || m.Type == "metadata":
				names[m.TSID] = name(m)
			case event == "data" || m.Data != nil:
				for _, d := range m.Data {
					if d.Value == nil || math.IsNaN(*d.Value) {
						continue
					}
					v := *d.Value
					last, seen[d.TSID] = &v, true
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if len(seen) > 1 {
		list := make([]string, 0, len(seen))
		for id := range seen {
			if n := names[id]; n != "" {
				id = n
			}
			list = append(list, id)
		}
		sort.Strings(list)
		return 0, &metrics.MultipleSeriesError{Series: list}
	}
	if last == nil {
		return 0, metrics.ErrNoData
	}
	return *last, nil
}

// name is a time series' name from its metadata: the metric and its
// dimensions, else its tsId.
func name(m message) string {
	metric, _ := m.Properties["sf_originatingMetric"].(string)
	if metric == "" {
		metric, _ = m.Properties["sf_metric"].(string)
	}
	var dims []string
	if keys, ok := m.Properties["sf_key"].([]any); ok {
		for _, k := range keys {
			ks, _ := k.(string)
			// sf_ keys are SignalFlow's own (the metric, a computation id).
			if v, ok := m.Properties[ks].(string); ok && !strings.HasPrefix(ks, "sf_") {
				dims = append(dims, ks+"="+v)
			}
		}
	}
	sort.Strings(dims)
	if metric == "" && len(dims) == 0 {
		return m.TSID
	}
	return metric + "{" + strings.Join(dims, ",") + "}"
}

// readEvents parses a text/event-stream: events are "event:" and "data:"
// lines ended by a blank line; several data lines join with a newline.
func readEvents(body io.Reader, handle func(event string, m message) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	var (
		event string
		data  bytes.Buffer
	)
	dispatch := func() error {
		defer func() { event = ""; data.Reset() }()
		if data.Len() == 0 {
			return nil
		}
		var m message
		if err := json.Unmarshal(data.Bytes(), &m); err != nil {
			return fmt.Errorf("malformed splunk event %q: %w", event, err)
		}
		return handle(event, m)
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := dispatch(); err != nil {
				return err
			}
		case strings.HasPrefix(line, ":"): // a comment (keep-alive)
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a splunk event is longer than %d KiB", maxEventBytes>>10)
		}
		return fmt.Errorf("failed to read the splunk answer: %w", err)
	}
	return dispatch()
}
