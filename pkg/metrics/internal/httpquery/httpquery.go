// Package httpquery holds what the HTTP metric providers (graphite, influxdb,
// web) share: the address rule, a client that never follows a redirect to
// another host, bounded reads of every body and error messages quoted from
// the backend but never longer than a line of status.
package httpquery

import (
	"bytes"
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

// MaxBody bounds every response body read from a metrics backend.
const MaxBody = 8 << 20

// maxMessage bounds the part of an error body quoted in an error.
const maxMessage = 512

// Address parses a provider address. http:// is accepted on loopback, and
// elsewhere only when cleartext is true: the caller sends no credential
// (self-hosted backends such as Graphite are commonly reached over plain
// http inside the cluster, as Flagger's examples do). An address carrying
// user:password@ is refused: credentials belong in the Secret.
func Address(typ, raw string, cleartext bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: the %s address %q must be an https:// URL", metrics.ErrInvalidConfig, typ, redactURL(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: the %s address must not carry credentials: put them in the Secret", metrics.ErrInvalidConfig, typ)
	}
	if u.Scheme == "http" && !cleartext && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: the %s address must be an https:// URL: http:// would send the credentials in clear text (allowed on loopback only)", metrics.ErrInvalidConfig, typ)
	}
	return u, nil
}

// IsLoopback reports whether host is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops the user info of an address that failed to parse as one
// we accept, so a password in it never reaches an error.
func redactURL(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "***@" + raw[i+1:]
		}
		return "***@" + raw[i+1:]
	}
	return raw
}

// Client returns an HTTP client for one backend. It follows redirects only
// to the same scheme and host (a redirect elsewhere would carry the
// credentials there) and has no timeout of its own: the Checker's context
// deadline bounds each query.
func Client(insecureSkipVerify bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if insecureSkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the MetricTemplate asks for it
	}
	return &http.Client{Transport: t, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
			return fmt.Errorf("refusing a redirect to another host (%s): it would receive the credentials", req.URL.Host)
		}
		return nil
	}}
}

// ReadBody reads a response body of at most MaxBody bytes: a longer one is
// an error, never a silently truncated document.
func ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read the response: %w", err)
	}
	if len(b) > MaxBody {
		return nil, fmt.Errorf("the response is larger than %d MiB", MaxBody>>20)
	}
	return b, nil
}

// StatusError is the error of an HTTP 4xx or 5xx answer: the status and the
// backend's message, from its JSON error fields when it has them, else the
// start of its body. The credentials sent are cut out of the message: a
// backend may echo them ("invalid token ...").
func StatusError(typ string, code int, body []byte, credentials ...string) error {
	msg := Message(body)
	for _, c := range credentials {
		if c != "" {
			msg = strings.ReplaceAll(msg, c, "***")
		}
	}
	if msg == "" {
		return fmt.Errorf("%s answered HTTP %d", typ, code)
	}
	return fmt.Errorf("%s answered HTTP %d: %s", typ, code, msg)
}

// Message extracts the error message of a backend's answer: the usual
// fields of JSON error documents (InfluxDB's message, Graphite and others'
// error), else the text itself, on one line and bounded.
func Message(body []byte) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil {
		for _, k := range []string{"message", "error", "errors", "detail"} {
			switch v := doc[k].(type) {
			case string:
				if v != "" {
					return bound(v)
				}
			case []any, map[string]any:
				b, _ := json.Marshal(v)
				return bound(string(b))
			}
		}
	}
	return bound(string(bytes.TrimSpace(body)))
}

// bound puts a message on one line of at most maxMessage bytes, cut on a
// rune boundary.
func bound(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// TransportError drops the request URL from a transport error: it repeats
// the whole query (status shows it already) and, for some backends, query
// parameters that are better not repeated in every message.
func TransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// ErrTooLarge is a response body longer than MaxBody.
var ErrTooLarge = fmt.Errorf("the response is larger than %d MiB", MaxBody>>20)

// Bounded wraps a client whose bodies are read by someone else (a vendor's
// client library): every response body, decompressed, fails with
// ErrTooLarge past MaxBody bytes instead of being read to its end. The
// request's Accept-Encoding is dropped so that the transport decompresses
// (and the bound counts decompressed bytes, not a gzip bomb's).
func Bounded(c *http.Client) *http.Client {
	out := *c
	out.Transport = &boundedTransport{next: c.Transport}
	return &out
}

type boundedTransport struct{ next http.RoundTripper }

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept-Encoding") != "" {
		req = req.Clone(req.Context())
		req.Header.Del("Accept-Encoding")
	}
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{r: resp.Body, c: resp.Body, left: MaxBody}
	return resp, nil
}

type boundedBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly MaxBody from a longer one.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.c.Close() }

// Headers wraps a client so that every request carries the template's
// headers, for vendor clients that build their own requests.
func Headers(c *http.Client, h http.Header) *http.Client {
	if len(h) == 0 {
		return c
	}
	out := *c
	out.Transport = &headerTransport{next: c.Transport, headers: h.Clone()}
	return &out
}

type headerTransport struct {
	next    http.RoundTripper
	headers http.Header
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return t.next.RoundTrip(req)
}
