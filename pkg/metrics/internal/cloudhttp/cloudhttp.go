// Package cloudhttp holds what the cloud metrics providers (CloudWatch,
// Google Cloud Monitoring, Kubernetes external metrics) share about HTTP:
// the endpoint rule (https, http on loopback only), a client that follows no
// redirect and bounds every response body, and short error excerpts.
package cloudhttp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes bounds every response body a provider reads.
const MaxBodyBytes = 8 << 20

// ErrBodyTooLarge is a response longer than MaxBodyBytes.
var ErrBodyTooLarge = fmt.Errorf("the response is larger than %d MiB", MaxBodyBytes>>20)

// Endpoint returns addr, or def when addr is empty, without a trailing
// slash. Credentials travel in every request, so plain http is accepted on
// loopback only (tests, a local proxy) and the URL may not carry a user.
func Endpoint(addr, def string) (string, error) {
	if addr == "" {
		addr = def
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("the address %q must be an https:// URL (http:// on loopback only)", addr)
	}
	if u.User != nil {
		return "", errors.New("the address must not carry credentials: put them in the Secret")
	}
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("the address %s must be https://: http:// would send credentials in clear text (allowed on loopback only)", u.Redacted())
		}
	}
	return strings.TrimSuffix(addr, "/"), nil
}

// Client returns an HTTP client that follows no redirect (a redirect could
// carry signed or bearer credentials to another host) and fails a body
// longer than MaxBodyBytes instead of reading it all.
// The MetricTemplate's headers are added to every request.
func Client(insecureSkipVerify bool, headers http.Header) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the MetricTemplate asks for it
	}
	return &http.Client{
		Transport:     Wrap(tr, headers),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Wrap adds headers to every request of next and bounds every response
// body, for clients that bring their own transport (client-go).
func Wrap(next http.RoundTripper, headers http.Header) http.RoundTripper {
	return Bounded(withHeaders(next, headers.Clone()))
}

// Bounded wraps a transport so that every response body fails with
// ErrBodyTooLarge past MaxBodyBytes.
func Bounded(next http.RoundTripper) http.RoundTripper { return boundedTransport{next: next} }

type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxBodyBytes {
		// Announced too large: fail before reading any of it.
		_ = resp.Body.Close()
		return nil, ErrBodyTooLarge
	}
	resp.Body = &boundedBody{r: io.LimitReader(resp.Body, MaxBodyBytes+1), c: resp.Body}
	return resp, nil
}

// withHeaders adds headers after any signing: AWS accepts unsigned extra
// headers, and a Google token is set by the oauth2 transport above this one.
func withHeaders(next http.RoundTripper, h http.Header) http.RoundTripper {
	if len(h) == 0 {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context())
		for k, vs := range h {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type boundedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.n > MaxBodyBytes {
		return 0, ErrBodyTooLarge
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > MaxBodyBytes {
		return n, ErrBodyTooLarge
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.c.Close() }

// Excerpt is the start of a vendor's error text, on one line, valid UTF-8,
// at most 512 bytes: enough to quote the vendor's message in a status.
func Excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= 512 {
		return s
	}
	s = s[:509]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
