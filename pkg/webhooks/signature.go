package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SignatureHeader carries the HMAC-SHA256 signature of a webhook call whose
// hook names a Secret:
//
//	X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>
//
// To verify it, recompute the HMAC over the timestamp, a dot and the raw
// body with the Secret's key, compare in constant time, and refuse a
// timestamp older than a few minutes (replays). Verify does exactly this.
const SignatureHeader = "X-Sluice-Signature"

// Sign returns the signature header value of body at time t.
func Sign(key, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(key, ts, body)
}

func mac(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is a missing, malformed, wrong or stale signature.
var ErrBadSignature = errors.New("invalid webhook signature")

// Verify checks a signature header against body and key, refusing
// signatures made more than maxAge away from now.
func Verify(header string, key, body []byte, now time.Time, maxAge time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("%w: timestamp outside the accepted window of %s", ErrBadSignature, maxAge)
	}
	want := mac(key, ts, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: signature mismatch", ErrBadSignature)
	}
	return nil
}

// SecretKey is the key of a hook's Secret that holds the signing key.
const SecretKey = "key"

// SecretFromReader resolves signing keys from Secrets (read uncached: the
// manager caches Secrets as metadata only).
func SecretFromReader(r client.Reader) SecretFunc {
	return func(ctx context.Context, namespace, name string) ([]byte, error) {
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("failed to read the signing Secret %s/%s: %w", namespace, name, err)
		}
		key, ok := s.Data[SecretKey]
		if !ok || len(key) == 0 {
			return nil, fmt.Errorf("the signing Secret %s/%s has no key %q", namespace, name, SecretKey)
		}
		return key, nil
	}
}
