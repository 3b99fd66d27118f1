// Package saas is the HTTP plumbing shared by the metric providers of hosted
// APIs (Datadog, New Relic, Dynatrace): the address rules, bounded reads, no
// credentials sent to another host, and errors that quote the vendor's
// message but never a credential.
package saas

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

// MaxResponseBytes bounds how much of an answer is read.
const MaxResponseBytes = 8 << 20

// maxMessage bounds the vendor message quoted in an error.
const maxMessage = 512

// Client sends the requests of one provider to one base address.
type Client struct {
	vendor  string
	base    *url.URL
	hc      *http.Client
	headers http.Header
	secrets []string
}

// New builds a client for the vendor (named in errors) at address, or at def
// when address is empty. Credentials travel in headers, so the address must
// be https:// (http:// only on loopback, for tests) and carry no user info.
// secrets are removed from every error text, whatever the vendor echoes.
func New(vendor, address, def string, cfg metrics.ProviderConfig, secrets ...string) (*Client, error) {
	base, err := BaseURL(address, def)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", metrics.ErrInvalidConfig, vendor, err)
	}
	c := &Client{vendor: vendor, base: base, hc: HTTPClient(base, cfg), headers: cfg.Headers.Clone()}
	for _, s := range secrets {
		if s = strings.TrimSpace(s); len(s) >= 4 {
			c.secrets = append(c.secrets, s)
		}
	}
	return c, nil
}

// ErrTooLarge is an answer longer than MaxResponseBytes.
var ErrTooLarge = fmt.Errorf("the answer is larger than %d MiB: narrow the query", MaxResponseBytes>>20)

// HTTPClient is the client of one API at base: certificates verified unless
// cfg.InsecureSkipVerify, redirects followed only on base's scheme and host
// (API keys travel in headers that net/http forwards to any host), and
// bodies that fail with ErrTooLarge past MaxResponseBytes.
func HTTPClient(base *url.URL, cfg metrics.ProviderConfig) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the MetricTemplate asks for it
	}
	return &http.Client{Transport: boundedTransport{next: tr}, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
			return fmt.Errorf("refused a redirect to %s: the credentials are only sent to %s", req.URL.Host, base.Host)
		}
		return nil
	}}
}

// boundedTransport bounds every response body.
type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: MaxResponseBytes}
	return resp, nil
}

// boundedBody reads up to left bytes, then fails with ErrTooLarge if the
// body goes on.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: one more byte means too large, EOF means the body
		// fitted exactly.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// Base is the address requests go to.
func (c *Client) Base() string { return c.base.String() }

// BaseURL parses address (def when empty): an https:// URL, or http:// on
// loopback, without credentials, query or fragment.
func BaseURL(address, def string) (*url.URL, error) {
	if address == "" {
		address = def
	}
	if address == "" {
		return nil, errors.New("no address: set the MetricTemplate's provider.address")
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("provider.address must be an https:// URL (http:// on loopback only)")
	}
	if u.User != nil {
		return nil, errors.New("provider.address must not carry credentials: put them in the Secret")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("provider.address must not have a query or fragment")
	}
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, errors.New("provider.address must be an https:// URL: http:// would send the API key in clear text (allowed on loopback only)")
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Request is one API call.
type Request struct {
	Method string
	// Path is joined to the base address's path.
	Path   string
	Query  url.Values
	Header http.Header
	// Body, when not nil, is sent as JSON.
	Body any
	// Text, when set, is sent as text/plain instead of Body.
	Text string
	// Accept is the media type asked for; application/json when empty.
	Accept string
	// ErrorMessage extracts the vendor's message from an error answer's
	// body; the body's text when nil or when it finds none.
	ErrorMessage func(body []byte) string
}

// Do sends req and decodes a 2xx answer's JSON into out. Errors name the
// vendor and quote its message (bounded, credentials removed).
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	return c.Stream(ctx, req, func(body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return fmt.Errorf("failed to read the %s answer: %w", c.vendor, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			// The decoder's message quotes no input beyond a type name.
			return fmt.Errorf("malformed %s answer: %w", c.vendor, err)
		}
		return nil
	})
}

// Stream sends req and hands a 2xx answer's body to read, for answers
// read as they arrive (server-sent events). An error answer is read whole
// and quoted as Do quotes it.
func (c *Client) Stream(ctx context.Context, req Request, read func(body io.Reader) error) error {
	u := *c.base
	u.Path += req.Path
	u.RawQuery = req.Query.Encode()
	var body io.Reader
	contentType := ""
	switch {
	case req.Text != "":
		body, contentType = strings.NewReader(req.Text), "text/plain"
	case req.Body != nil:
		b, err := json.Marshal(req.Body)
		if err != nil {
			return fmt.Errorf("failed to encode the %s request: %w", c.vendor, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return fmt.Errorf("failed to build the %s request: %w", c.vendor, err)
	}
	for k, vs := range c.headers {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	for k, vs := range req.Header {
		hr.Header[http.CanonicalHeaderKey(k)] = vs
	}
	hr.Header.Set("Accept", "application/json")
	if req.Accept != "" {
		hr.Header.Set("Accept", req.Accept)
	}
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		// url.Error quotes the URL: the query, never a header.
		return fmt.Errorf("%s request failed: %w", c.vendor, c.redactErr(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, err := io.ReadAll(resp.Body)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("failed to read the %s answer %s: %w", c.vendor, resp.Status, c.redactErr(err))
		}
		msg := ""
		if req.ErrorMessage != nil {
			msg = req.ErrorMessage(b)
		}
		if msg == "" {
			msg = string(b)
		}
		msg = Quote(msg, c.secrets)
		if msg == "" {
			return fmt.Errorf("%s answered %s", c.vendor, resp.Status)
		}
		return fmt.Errorf("%s answered %s: %s", c.vendor, resp.Status, msg)
	}
	if err := read(resp.Body); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("%s: %w", c.vendor, ErrTooLarge)
		}
		return c.redactErr(err)
	}
	return nil
}

// redact removes the credentials from a text.
func (c *Client) redact(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

func (c *Client) redactErr(err error) error {
	if msg := c.redact(err.Error()); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// Quote is a vendor message fit for an error: trimmed, bounded, without
// the secrets.
func Quote(msg string, secrets []string) string {
	// Redact before cutting, so that no prefix of a secret is left.
	for _, v := range secrets {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return bound(strings.TrimSpace(msg))
}

// bound cuts a vendor message to maxMessage bytes on a rune boundary.
func bound(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// SecretKey returns a required key of the provider's Secret, or an
// ErrInvalidConfig error naming the key (never a value).
func SecretKey(cfg metrics.ProviderConfig, vendor, key string) (string, error) {
	if cfg.Secret == nil {
		return "", fmt.Errorf("%w: %s needs a Secret (provider.secretRef) with the key %s", metrics.ErrInvalidConfig, vendor, key)
	}
	v := strings.TrimSpace(string(cfg.Secret[key]))
	if v == "" {
		return "", fmt.Errorf("%w: the Secret has no key %s (%s)", metrics.ErrInvalidConfig, key, vendor)
	}
	return v, nil
}

// JSONErrors is the message of the common error shapes {"errors": [...]},
// {"error": "..."}, {"message": "..."} and {"error": {"message": "..."}}.
func JSONErrors(body []byte) string {
	var e struct {
		Errors  []json.RawMessage `json:"errors"`
		Error   json.RawMessage   `json:"error"`
		Message string            `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var msgs []string
	for _, raw := range e.Errors {
		if m := text(raw); m != "" {
			msgs = append(msgs, m)
		}
	}
	if m := text(e.Error); m != "" {
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 && e.Message != "" {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; ")
}

// text is a JSON string, or the message (or error) field of an object.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(raw, &o) == nil {
		if o.Message != "" {
			return o.Message
		}
		return o.Error
	}
	return ""
}
