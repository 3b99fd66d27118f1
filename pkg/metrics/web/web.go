// Package web is Argo Rollouts' web metric: an HTTP request to the
// MetricTemplate's address whose JSON answer the query, a JSONPath, reads
// (k8s.io/client-go/util/jsonpath, the syntax of kubectl -o jsonpath and of
// Argo's jsonPath).
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/client-go/util/jsonpath"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/httpquery"
)

// Web requests one URL.
type Web struct {
	url     string
	method  string
	body    string
	headers http.Header
	token   string
	user    string
	pass    string
	client  *http.Client
}

var _ metrics.Provider = (*Web)(nil)

// New builds a web client: a metrics.Factory. The address (rendered by the
// Checker) is the URL requested; it must be https:// (http:// on loopback
// only), since a web metric's headers and Secret usually authenticate it.
// The Secret holds token (sent as a bearer token) or username and password,
// as Prometheus' does.
func New(_ context.Context, cfg metrics.ProviderConfig) (metrics.Provider, error) {
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: the web provider needs spec.provider.address: the URL it requests", metrics.ErrInvalidConfig)
	}
	u, err := httpquery.Address("web", cfg.Address, false)
	if err != nil {
		return nil, err
	}
	w := &Web{url: u.String(), method: http.MethodGet, body: cfg.Body, headers: cfg.Headers.Clone(),
		client: httpquery.Client(cfg.InsecureSkipVerify)}
	if cfg.Method != "" {
		w.method = cfg.Method
	}
	if w.method != http.MethodGet && w.method != http.MethodPost {
		return nil, fmt.Errorf("%w: the web provider's method must be GET or POST, not %q", metrics.ErrInvalidConfig, w.method)
	}
	if w.body != "" && w.method != http.MethodPost {
		return nil, fmt.Errorf("%w: the web provider sends a body with method POST only", metrics.ErrInvalidConfig)
	}
	if cfg.Secret != nil {
		w.token = string(cfg.Secret["token"])
		w.user, w.pass = string(cfg.Secret["username"]), string(cfg.Secret["password"])
		if w.token == "" && (w.user == "" || w.pass == "") {
			return nil, fmt.Errorf("%w: the Secret has neither the key token nor the keys username and password", metrics.ErrInvalidConfig)
		}
	}
	return w, nil
}

// parse compiles a JSONPath. Argo writes it in braces ({$.data.ok}); a bare
// path ($.data.ok or .data.ok) is accepted too.
func parse(query string) (*jsonpath.JSONPath, error) {
	query = strings.TrimSpace(query)
	if !strings.HasPrefix(query, "{") {
		query = "{" + query + "}"
	}
	jp := jsonpath.New("web")
	if err := jp.Parse(query); err != nil {
		return nil, fmt.Errorf("the web query is not a JSONPath (e.g. {$.data.successRate}): %w", err)
	}
	// A path that matches nothing is no data, not an error: a service that
	// has not measured anything yet often omits the field.
	jp.AllowMissingKeys(true)
	return jp, nil
}

// Query requests the URL and reads the one value the JSONPath selects: a
// number, a numeric string, or a boolean (true is 1, false 0, so that
// thresholdRange {min: 1} asks for true). Nothing selected, or null, is
// metrics.ErrNoData; several values are a *metrics.MultipleSeriesError.
func (w *Web) Query(ctx context.Context, query string) (float64, error) {
	jp, err := parse(query)
	if err != nil {
		return 0, err
	}
	var body io.Reader // nil (no body) unless the template has one
	if w.body != "" {
		body = strings.NewReader(w.body)
	}
	req, err := http.NewRequestWithContext(ctx, w.method, w.url, body)
	if err != nil {
		return 0, fmt.Errorf("failed to build the web request: %w", err)
	}
	for k, vs := range w.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != nil && req.Header.Get("Content-Type") == "" && json.Valid([]byte(w.body)) {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case w.token != "":
		req.Header.Set("Authorization", "Bearer "+w.token)
	case w.user != "":
		req.SetBasicAuth(w.user, w.pass)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("web request failed: %w", httpquery.TransportError(err))
	}
	defer resp.Body.Close()
	raw, err := httpquery.ReadBody(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("web: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, httpquery.StatusError("web", resp.StatusCode, raw, w.token, w.pass)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("web answered something other than JSON: %w", err)
	}
	found, err := jp.FindResults(doc)
	if err != nil {
		return 0, fmt.Errorf("the JSONPath %s cannot be applied to the answer: %w", query, err)
	}
	var values []any
	for _, rs := range found {
		for _, r := range rs {
			values = append(values, valueOf(r))
		}
	}
	switch len(values) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
		return number(values[0])
	}
	names := make([]string, 0, len(values))
	for i, v := range values {
		b, _ := json.Marshal(v)
		names = append(names, fmt.Sprintf("[%d]=%.32s", i, b))
	}
	return 0, &metrics.MultipleSeriesError{Series: names}
}

// valueOf unwraps a JSONPath result; a JSON null is an invalid or nil
// interface value.
func valueOf(r reflect.Value) any {
	if !r.IsValid() {
		return nil
	}
	if r.Kind() == reflect.Interface && r.IsNil() {
		return nil
	}
	return r.Interface()
}

// number is the value of one selected JSON value.
func number(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, metrics.ErrNoData
	case float64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("the JSONPath selects the string %.64q, not a number", x)
		}
		if math.IsNaN(f) {
			return 0, metrics.ErrNoData
		}
		return f, nil
	}
	b, _ := json.Marshal(v)
	return 0, fmt.Errorf("the JSONPath selects %.64s, not a number: select a field holding one", b)
}
