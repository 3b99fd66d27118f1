// Package webhooks calls a Canary's webhooks with Flagger's JSON payload.
package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// MaxResponseBytes bounds how much of a webhook's response is read.
const MaxResponseBytes = 64 << 10

// maxQuoted bounds how much of a response body is quoted in an error.
const maxQuoted = 512

// Payload is the JSON body of a webhook call: Flagger's fields (name,
// namespace, phase, checksum, metadata) plus revision, canaryWeight and type.
type Payload struct {
	Name         string            `json:"name"`
	Namespace    string            `json:"namespace"`
	Phase        string            `json:"phase"`
	Checksum     string            `json:"checksum"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Revision     string            `json:"revision"`
	CanaryWeight int32             `json:"canaryWeight"`
	Type         string            `json:"type"`
}

// NewPayload builds the payload of a call of hook for c in phase.
func NewPayload(c *sluicev1beta1.Canary, hook sluicev1beta1.CanaryWebhook, phase sluicev1beta1.CanaryPhase) Payload {
	return Payload{
		Name:         c.Name,
		Namespace:    c.Namespace,
		Phase:        string(phase),
		Checksum:     c.Status.Revision,
		Metadata:     hook.Metadata,
		Revision:     c.Status.Revision,
		CanaryWeight: c.Status.CanaryWeight,
		Type:         hook.TypeOrDefault(),
	}
}

// SecretFunc returns the signing key of a hook's Secret (key "key").
type SecretFunc func(ctx context.Context, namespace, name string) ([]byte, error)

// Client calls webhooks over HTTP. Its zero value is not usable; use New.
type Client struct {
	secure   *http.Client
	insecure *http.Client
	// Secret resolves signing keys; hooks with a secretRef fail without it.
	Secret SecretFunc
	// Backoff is the first wait between retries; it doubles each time.
	Backoff time.Duration
	// now is the clock of signatures.
	now func() time.Time
}

// New returns a client whose connections are shared between calls.
func New() *Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	insecure := base.Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for hooks that set disableTLS
	// A redirect is an answer, not success: it is not followed.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		secure:   &http.Client{Transport: base, CheckRedirect: noRedirect},
		insecure: &http.Client{Transport: insecure, CheckRedirect: noRedirect},
		Backoff:  500 * time.Millisecond,
		now:      time.Now,
	}
}

// Call posts the payload to the hook's URL. Any 2xx is success; anything
// else is an error that quotes the status and the start of the response
// body. Connection errors, 5xx and 429 are retried hook.retries times with
// exponential backoff; the whole call, retries included, is bounded by the
// hook's timeout.
func (c *Client) Call(ctx context.Context, canary *sluicev1beta1.Canary, hook sluicev1beta1.CanaryWebhook, phase sluicev1beta1.CanaryPhase) error {
	return c.post(ctx, canary, hook, NewPayload(canary, hook, phase), time.Now())
}

// post makes a call asked for at issued and records it in the metrics.
func (c *Client) post(ctx context.Context, canary *sluicev1beta1.Canary, hook sluicev1beta1.CanaryWebhook, payload Payload, issued time.Time) (err error) {
	start := time.Now()
	defer func() { recordCall(canary, hook, issued, start, err) }()
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("failed to encode the payload: %w", err)
	}
	var key []byte
	if hook.SecretRef != nil {
		if c.Secret == nil {
			return fmt.Errorf("webhook %s: no Secret reader to sign with", hook.Name)
		}
		if key, err = c.Secret(ctx, canary.Namespace, hook.SecretRef.Name); err != nil {
			return fmt.Errorf("webhook %s: %w", hook.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, hook.TimeoutOrDefault())
	defer cancel()
	wait := c.Backoff
	for attempt := 0; ; attempt++ {
		retry, err := c.once(ctx, hook, body, key)
		if err == nil || !retry || attempt >= int(hook.Retries) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt+1, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// once makes one attempt; retry tells whether the failure may be retried.
func (c *Client) once(ctx context.Context, hook sluicev1beta1.CanaryWebhook, body, key []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("invalid webhook URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice")
	if key != nil {
		// Each attempt is a new request with its own id: a verifier that
		// saw the first may refuse a repeated id.
		if err := SignRequest(req, key, body, c.now()); err != nil {
			return false, fmt.Errorf("webhook %s: %w", hook.Name, err)
		}
	}
	hc := c.secure
	if hook.DisableTLS {
		hc = c.insecure
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook %s failed after %s: %w", hook.Name, time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("webhook %s returned %s: %s", hook.Name, resp.Status, quote(data))
}

func quote(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return fmt.Sprintf("%q", s)
}
