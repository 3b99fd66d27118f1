package commitstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// MaxResponseBytes bounds how much of a host's answer is read.
const MaxResponseBytes = 64 << 10

// maxReason bounds the host's reason quoted in an error.
const maxReason = 256

// HTTPError is a status the host did not accept. Its Reason is the host's
// message, with any credential removed.
type HTTPError struct {
	StatusCode int
	Reason     string
}

func (e *HTTPError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("the Git host answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("the Git host answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Reason)
}

// IsPermanent tells whether err is an answer that retrying does not
// change: a 4xx other than 429.
func IsPermanent(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != http.StatusTooManyRequests
}

// client sends the requests of every provider.
type client struct {
	hc          *http.Client
	log         logr.Logger
	secrets     []string
	maxAttempts int
	backoff     time.Duration
	maxWait     time.Duration
}

// noRedirects keeps the Authorization header on the host it was meant for.
var noRedirects = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func newClient(cfg Config) *client {
	c := &client{hc: cfg.HTTPClient, log: cfg.Logger, maxAttempts: cfg.MaxAttempts, backoff: cfg.Backoff, maxWait: cfg.MaxWait}
	if c.hc == nil {
		c.hc = noRedirects
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 4
	}
	if c.backoff <= 0 {
		c.backoff = time.Second
	}
	if c.maxWait <= 0 {
		c.maxWait = 30 * time.Second
	}
	// A host may echo what it was sent: the token, or the header built from it.
	for _, s := range []string{cfg.Token, cfg.Username + ":" + cfg.Token, basicAuth(cfg.Username, cfg.Token)[len("Basic "):]} {
		if len(s) >= 4 {
			c.secrets = append(c.secrets, s)
		}
	}
	return c
}

// request is one documented call of a host.
type request struct {
	url    string
	header http.Header
	body   any
	// accept, when set, takes a refusal for a success (GitLab's answer to
	// a status that is already set).
	accept func(code int, reason string) bool
}

// post sends req, retrying 5xx, 429 and transport errors with exponential
// backoff (honouring Retry-After up to maxWait). It logs once when it
// gives up: on a 4xx, or when the attempts are spent.
func (c *client) post(ctx context.Context, s Status, req request) error {
	body, err := json.Marshal(req.body)
	if err != nil {
		return fmt.Errorf("failed to encode the commit status: %w", err)
	}
	host := ""
	if u, err := url.Parse(req.url); err == nil {
		host = u.Host
	}
	log := c.log.WithValues("host", host, "commit", s.SHA, "context", s.Context, "state", string(s.State))
	wait := c.backoff
	attempt := 1
retries:
	for ; ; attempt++ {
		var retryAfter time.Duration
		retryAfter, err = c.once(ctx, req, body)
		if err == nil {
			log.V(1).Info("Set the commit status", "attempts", attempt)
			return nil
		}
		if IsPermanent(err) {
			log.Error(err, "The Git host refused the commit status")
			return err
		}
		if attempt >= c.maxAttempts || ctx.Err() != nil {
			break
		}
		d := min(max(wait, retryAfter), c.maxWait)
		log.V(1).Info("Retrying the commit status", "attempt", attempt, "after", d, "error", err.Error())
		select {
		case <-ctx.Done():
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
			break retries
		case <-time.After(d):
		}
		wait *= 2
	}
	log.Error(err, "Failed to set the commit status", "attempts", attempt)
	return err
}

// once makes one attempt; it returns the wait a 429 or 503 asked for.
func (c *client) once(ctx context.Context, req request, body []byte) (time.Duration, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("failed to build the commit status request: %w", err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "sluice-commit-status")
	resp, err := c.hc.Do(hr)
	if err != nil {
		// A *url.Error quotes the URL, which holds no credential: tokens
		// travel in headers only.
		return 0, fmt.Errorf("failed to post the commit status: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	reason := c.redact(hostReason(raw))
	if req.accept != nil && req.accept(resp.StatusCode, reason) {
		return 0, nil
	}
	return retryAfter(resp.Header.Get("Retry-After")), &HTTPError{StatusCode: resp.StatusCode, Reason: reason}
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

// hostReason finds the message in a host's error body: "message" (GitHub,
// GitLab, Gitea, Azure DevOps), "error.message" (Bitbucket Cloud) or
// "errors[0].message" (Bitbucket Server); otherwise the start of the body.
func hostReason(raw []byte) string {
	var b struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &b); err == nil {
		var s string
		var nested struct {
			Message string `json:"message"`
		}
		detail := ""
		if len(b.Errors) > 0 && b.Errors[0].Message != "" {
			detail = ": " + b.Errors[0].Message // GitHub: "Validation Failed" and why
		}
		switch {
		case len(b.Message) > 0 && json.Unmarshal(b.Message, &s) == nil && s != "":
			return oneLine(s + detail)
		case len(b.Message) > 0 && string(b.Message) != "null":
			return oneLine(string(b.Message)) // GitLab: {"message": {"field": ["why"]}}
		case len(b.Error) > 0 && json.Unmarshal(b.Error, &nested) == nil && nested.Message != "":
			return oneLine(nested.Message)
		case len(b.Error) > 0 && json.Unmarshal(b.Error, &s) == nil && s != "":
			return oneLine(s)
		case len(b.Errors) > 0 && b.Errors[0].Message != "":
			return oneLine(b.Errors[0].Message)
		}
	}
	return oneLine(string(raw))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, maxReason)
}

// redact removes the credentials from a host's message: a host may echo
// what it was sent.
func (c *client) redact(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}
