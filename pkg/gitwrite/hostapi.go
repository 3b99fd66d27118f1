package gitwrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"

	"github.com/sluice-cd/sluice/pkg/commitstatus"
)

// hostAPI sends the REST calls of the GitHub and GitLab pull request
// clients: bounded reads, the token in a header only and removed from
// every message, retries of 5xx, 429 and transport errors (honouring
// Retry-After up to maxWait, since the caller is a reconcile that must not
// block for long), and no redirect followed, so that the token stays on
// the host it was meant for.
type hostAPI struct {
	base   string
	header http.Header
	token  string
	hc     *http.Client

	maxAttempts int
	backoff     time.Duration
	maxWait     time.Duration
}

// errBadAnswer is a 2xx answer that is not the documented JSON: asking
// again would not change it (and could open a second pull request).
var errBadAnswer = errors.New("the answer of the Git host is not the documented JSON")

// maxReason bounds the host's message quoted in an error.
const maxReason = 256

func newHostAPI(base, token string, header http.Header, hc *http.Client) (*hostAPI, error) {
	if err := checkAPIBase(base); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &hostAPI{base: strings.TrimSuffix(base, "/"), header: header, token: token, hc: hc, maxAttempts: 4, backoff: time.Second, maxWait: 10 * time.Second}, nil
}

// checkAPIBase refuses an API base the token should not be sent to: not
// http(s), carrying user info, or plain http:// off loopback (the token
// would travel in clear text).
func checkAPIBase(base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("the API of the Git host must be an https:// URL: use an https:// repository URL")
	}
	if u.User != nil {
		return errors.New("the API URL of the Git host must not carry credentials")
	}
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("the API of the Git host must be reached over https://: http:// would send the token in clear text (allowed on loopback only)")
		}
	}
	return nil
}

// do sends one call, retried while the host is unavailable, and decodes a
// 2xx answer into out. A refusal is a *commitstatus.HTTPError with the
// host's message (without the token) and its status code.
func (a *hostAPI) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("failed to encode the request: %w", err)
		}
	}
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	log := logr.FromContextOrDiscard(ctx)
	wait := a.backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := a.once(ctx, method, target, body, out)
		if err == nil || !retryable(err) || attempt >= a.maxAttempts || ctx.Err() != nil {
			return err
		}
		if retryAfter > a.maxWait {
			// The reconciler must not block that long: the next
			// reconcile asks again.
			return err
		}
		d := min(max(wait, retryAfter), a.maxWait)
		log.V(1).Info("Retrying a call to the Git host", "method", method, "attempt", attempt, "after", d, "error", err.Error())
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(d):
		}
		wait *= 2
	}
}

// once makes one attempt; it returns the wait a 429 or 503 asked for.
func (a *hostAPI) once(ctx context.Context, method, target string, body []byte, out any) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("failed to build the request: %w", err)
	}
	for k, v := range a.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "sluice-promotion")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		// A *url.Error quotes the URL, which holds no credential: the
		// token travels in a header only.
		return 0, fmt.Errorf("failed to reach the Git host: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return 0, fmt.Errorf("failed to read the answer of the Git host: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		wait := retryAfter(resp.Header.Get("Retry-After"))
		if resp.StatusCode == http.StatusForbidden && (wait > 0 || resp.Header.Get("X-RateLimit-Remaining") == "0") {
			// GitHub answers a spent rate limit with 403 (docs.github.com,
			// "Rate limits for the REST API"): a wait, not a refused token.
			if wait == 0 {
				wait = rateLimitReset(resp.Header.Get("X-RateLimit-Reset"))
			}
			return wait, &commitstatus.HTTPError{StatusCode: http.StatusTooManyRequests, Reason: "rate limited (403): " + a.reason(raw)}
		}
		return wait, &commitstatus.HTTPError{StatusCode: resp.StatusCode, Reason: a.reason(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, fmt.Errorf("%w: %w", errBadAnswer, err)
		}
	}
	return 0, nil
}

// reason finds the host's message: GitHub's "message" and its first
// "errors[].message" ("Validation Failed: A pull request already exists
// for …"), GitLab's "message" as a string or a list, or "error".
func (a *hostAPI) reason(raw []byte) string {
	var b struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	s := string(raw)
	if json.Unmarshal(raw, &b) == nil {
		var msg string
		var list []string
		switch {
		case json.Unmarshal(b.Message, &msg) == nil && msg != "":
			s = msg
		case json.Unmarshal(b.Message, &list) == nil && len(list) > 0:
			s = strings.Join(list, "; ")
		case len(b.Message) > 0 && string(b.Message) != "null":
			s = string(b.Message) // GitLab: {"message": {"field": ["why"]}}
		case b.Error != "":
			s = b.Error
		}
		if len(b.Errors) > 0 && b.Errors[0].Message != "" {
			s += ": " + b.Errors[0].Message
		}
	}
	// One line first: a token has no white space, so folding it cannot
	// make a token appear, and redacting after it catches every one.
	s = strings.Join(strings.Fields(s), " ")
	// A host may echo what it was sent. The marker's brackets are in no
	// token, so no token spans the marker and the text around it.
	if len(a.token) >= 4 {
		marker := "[redacted]"
		if strings.Contains(marker, a.token) {
			marker = "***"
		}
		s = strings.ReplaceAll(s, a.token, marker)
	}
	if len(s) > maxReason {
		s = cut(s, maxReason) + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// rateLimitReset reads X-RateLimit-Reset, the UTC epoch second at which
// GitHub's rate limit window resets.
func rateLimitReset(v string) time.Duration {
	s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || s <= 0 {
		return 0
	}
	return max(time.Until(time.Unix(s, 0)), 0)
}

// retryable tells whether another attempt may get another answer: after a
// transport error, a 5xx or a 429. A redirect is not followed (it would
// take the token elsewhere) and is not retried either.
func retryable(err error) bool {
	if errors.Is(err, errBadAnswer) {
		return false
	}
	var he *commitstatus.HTTPError
	if !errors.As(err, &he) {
		return true
	}
	return he.StatusCode >= 500 || he.StatusCode == http.StatusTooManyRequests
}

// isHTTPStatus tells whether err is the host's answer code.
func isHTTPStatus(err error, code int) bool {
	var he *commitstatus.HTTPError
	return errors.As(err, &he) && he.StatusCode == code
}

// repoPath is the repository of a clone URL, its path without slashes
// around it (GitSync's test server serves /owner/repo/.git).
func repoPath(repoURL string) (commitstatus.Repository, error) {
	r, err := commitstatus.ParseRepository(repoURL)
	if err != nil {
		return r, err
	}
	r.Path = strings.Trim(r.Path, "/")
	return r, nil
}

// cut truncates s to n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
