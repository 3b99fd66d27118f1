package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxResponseBytes bounds how much of a provider's response is read.
const MaxResponseBytes = 64 << 10

// DefaultTimeout bounds one delivery attempt.
const DefaultTimeout = 10 * time.Second

// maxQuoted bounds how much of a response body is quoted in an error.
const maxQuoted = 256

// Clients shares HTTP connections between notifiers: one transport without
// a proxy and one per proxy URL. Its zero value is not usable; use NewClients.
type Clients struct {
	mu      sync.Mutex
	base    *http.Transport
	clients map[string]*http.Client
}

// NewClients returns an empty set of shared HTTP clients.
func NewClients() *Clients {
	return &Clients{base: http.DefaultTransport.(*http.Transport).Clone(), clients: map[string]*http.Client{}}
}

// defaultClients is used by New when no Clients are given.
var defaultClients = NewClients()

// client returns the shared client for a proxy URL ("" for none). Redirects
// are not followed: a webhook that redirects is misconfigured, and following
// it would send the payload (and a bearer token) elsewhere.
func (c *Clients) client(proxy string) (*http.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.clients[proxy]; ok {
		return hc, nil
	}
	t := c.base.Clone()
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("spec.proxy is not a valid http(s) URL")
		}
		t.Proxy = http.ProxyURL(u)
	}
	// Without spec.proxy, the HTTPS_PROXY/NO_PROXY environment applies.
	hc := &http.Client{
		Transport:     limitedTransport{t},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.clients[proxy] = hc
	return hc, nil
}

// limitedTransport bounds every response body, also for the requests made by
// slack-go, which reads bodies to the end.
type limitedTransport struct{ rt http.RoundTripper }

func (l limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, MaxResponseBytes), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	c io.Closer
}

func (b limitedBody) Close() error { return b.c.Close() }

// Error is a failed delivery. Its message never contains the provider's
// address, token or proxy: they are credentials.
type Error struct {
	// Provider is the provider type.
	Provider string
	// StatusCode is the HTTP status of the response, 0 when there was none.
	StatusCode int
	// Permanent is true when retrying cannot help (a 4xx other than 408 and
	// 429, an error answer of the Slack API, an invalid configuration).
	Permanent bool
	msg       string
	// ctxErr keeps context.Canceled and DeadlineExceeded for errors.Is.
	ctxErr error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the context error that ended the call, if any; the
// underlying transport error is not kept because it holds the URL.
func (e *Error) Unwrap() error { return e.ctxErr }

// IsPermanent tells whether err is a delivery error that retrying cannot fix.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// redactor removes credentials from error messages.
type redactor struct {
	secrets []string
	host    string
}

// newRedactor redacts the address (its full form, path and query), the
// token and the proxy, longest first so that a part never hides a whole.
func newRedactor(address, token, proxy string) redactor {
	var s []string
	add := func(v string) {
		if len(v) > 3 {
			q := strconv.Quote(v)
			s = append(s, v, url.QueryEscape(v), q[1:len(q)-1])
		}
	}
	r := redactor{}
	for _, raw := range []string{address, proxy} {
		add(raw)
		if u, err := url.Parse(raw); err == nil && raw != "" {
			add(u.String())
			add(u.Redacted())
			if u.Path != "/" {
				add(u.Path)
				add(u.EscapedPath())
			}
			add(u.RawQuery)
			if p, ok := u.User.Password(); ok {
				add(p)
			}
			add(u.User.Username())
			if raw == address {
				r.host = u.Scheme + "://" + u.Host
			}
		}
	}
	add(token)
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	r.secrets = s
	return r
}

// clean returns s with every credential replaced by [redacted].
func (r redactor) clean(s string) string {
	for _, v := range r.secrets {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}

// transportError turns an error of an HTTP call into an Error that names the
// host only; the URL of a *url.Error is dropped.
func (r redactor) transportError(provider string, err error) *Error {
	var ue *url.Error
	inner := err
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	e := &Error{Provider: provider, msg: r.clean(fmt.Sprintf("%s: failed to post to %s: %v", provider, r.hostOrProvider(), inner))}
	switch {
	case errors.Is(err, context.Canceled):
		e.ctxErr = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.ctxErr = context.DeadlineExceeded
	}
	return e
}

func (r redactor) hostOrProvider() string {
	if r.host == "" {
		return "the provider"
	}
	return r.host
}

// statusError reports a non-2xx answer with the start of its body.
func (r redactor) statusError(provider string, code int, body []byte) *Error {
	quoted := strings.TrimSpace(string(body))
	if len(quoted) > maxQuoted {
		quoted = quoted[:maxQuoted] + "…"
	}
	msg := fmt.Sprintf("%s: %s answered HTTP %d", provider, r.hostOrProvider(), code)
	if quoted != "" {
		msg += ": " + quoted
	}
	permanent := code >= 300 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
	return &Error{Provider: provider, StatusCode: code, Permanent: permanent, msg: r.clean(msg)}
}

// poster posts JSON to one address.
type poster struct {
	provider string
	client   *http.Client
	address  string
	// token, when set, is sent as a bearer token.
	token   string
	timeout time.Duration
	redact  redactor
}

// postJSON posts v and returns the response body (bounded) of a 2xx answer.
func (p *poster) postJSON(ctx context.Context, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Provider: p.provider, Permanent: true, msg: fmt.Sprintf("%s: failed to encode the payload: %v", p.provider, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.address, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Provider: p.provider, Permanent: true, msg: p.provider + ": the address is not a valid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, p.redact.transportError(p.provider, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, p.redact.statusError(p.provider, resp.StatusCode, data)
	}
	return data, nil
}
