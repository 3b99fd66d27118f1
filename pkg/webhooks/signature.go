package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SignatureHeader carries the HMAC-SHA256 signature of a webhook call whose
// hook names a Secret:
//
//	X-Sluice-Signature: t=<unix seconds>,id=<request id>,v2=<hex HMAC-SHA256(key, signing string)>
//
// The signing string binds the call to its method, its request target and
// a unique id, so that a captured call can neither be sent to another path
// nor be replayed (a verifier remembers ids for the accepted age):
//
//	"sluice-v2" LF <METHOD> LF <request target> LF <t> LF <id> LF <raw body>
//
// The request target is the path and query as on the request line
// ("/gate/check", "/hooks/ns/name?x=1": url.URL.RequestURI). No field but the
// body may contain a line feed. The older "v1" scheme (timestamp and body
// only) is refused. See docs/webhooks.md.
const SignatureHeader = "X-Sluice-Signature"

// signingVersion starts every signing string.
const signingVersion = "sluice-v2"

// MaxRequestIDLength bounds the id of a signed request.
const MaxRequestIDLength = 128

// ErrBadSignature is a missing, malformed, wrong or stale signature.
var ErrBadSignature = errors.New("invalid webhook signature")

// Signature is a parsed X-Sluice-Signature header.
type Signature struct {
	// Timestamp is "t", in unix seconds, as sent.
	Timestamp string
	// ID is the request id, unique per request.
	ID string
	// MAC is the hex HMAC.
	MAC string
}

// NewRequestID returns a random request id (128 bits, hex).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Sign returns the signature header value of a request with method, target
// (path and query) and body, made at t with id.
func Sign(key []byte, method, target string, body []byte, t time.Time, id string) (string, error) {
	ts := strconv.FormatInt(t.Unix(), 10)
	m, err := newMAC(key, method, target, ts, id)
	if err != nil {
		return "", err
	}
	m.Write(body)
	return "t=" + ts + ",id=" + id + ",v2=" + hex.EncodeToString(m.Sum(nil)), nil
}

// SignRequest signs req (whose body is body) at now with a new request id
// and sets the header.
func SignRequest(req *http.Request, key, body []byte, now time.Time) error {
	sig, err := Sign(key, req.Method, req.URL.RequestURI(), body, now, NewRequestID())
	if err != nil {
		return err
	}
	req.Header.Set(SignatureHeader, sig)
	return nil
}

// newMAC returns an HMAC that has consumed the signing string up to the body.
func newMAC(key []byte, method, target, ts, id string) (hash.Hash, error) {
	if err := checkFields(method, target, id); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	for _, f := range []string{signingVersion, method, target, ts, id} {
		m.Write([]byte(f))
		m.Write([]byte{'\n'})
	}
	return m, nil
}

// checkFields refuses fields that would make the signing string ambiguous.
func checkFields(method, target, id string) error {
	switch {
	case method == "" || strings.ContainsAny(method, "\n\r \t"):
		return fmt.Errorf("%w: bad method %q", ErrBadSignature, method)
	case target == "" || strings.ContainsAny(target, "\n\r"):
		return fmt.Errorf("%w: bad request target", ErrBadSignature)
	case !validID(id):
		return fmt.Errorf("%w: the request id must be 1 to %d characters of [A-Za-z0-9._-]", ErrBadSignature, MaxRequestIDLength)
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// ParseSignature parses a header value; it checks the form, not the MAC.
func ParseSignature(header string) (Signature, error) {
	var s Signature
	var v1 bool
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			s.Timestamp = v
		case "id":
			s.ID = v
		case "v2":
			s.MAC = v
		case "v1":
			v1 = true
		}
	}
	if s.MAC == "" && v1 {
		return s, fmt.Errorf("%w: v1 signatures (timestamp and body only) can be replayed and are refused: upgrade the sender to v2", ErrBadSignature)
	}
	if s.Timestamp == "" || s.ID == "" || s.MAC == "" {
		return s, fmt.Errorf("%w: want t=<unix>,id=<request id>,v2=<hex>", ErrBadSignature)
	}
	if _, err := strconv.ParseInt(s.Timestamp, 10, 64); err != nil {
		return s, fmt.Errorf("%w: bad timestamp", ErrBadSignature)
	}
	if !validID(s.ID) {
		return s, fmt.Errorf("%w: the request id must be 1 to %d characters of [A-Za-z0-9._-]", ErrBadSignature, MaxRequestIDLength)
	}
	return s, nil
}

// Verifier checks a signature over a body that is written to it, so that a
// large body can be verified while it is read, without holding it.
type Verifier struct {
	sig Signature
	mac hash.Hash
}

// NewVerifier parses header and checks its timestamp is within maxAge of
// now; write the body to the verifier, then call Verify.
func NewVerifier(header string, key []byte, method, target string, now time.Time, maxAge time.Duration) (*Verifier, error) {
	sig, err := ParseSignature(header)
	if err != nil {
		return nil, err
	}
	sec, _ := strconv.ParseInt(sig.Timestamp, 10, 64) // checked by ParseSignature
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return nil, fmt.Errorf("%w: timestamp outside the accepted window of %s", ErrBadSignature, maxAge)
	}
	m, err := newMAC(key, method, target, sig.Timestamp, sig.ID)
	if err != nil {
		return nil, err
	}
	return &Verifier{sig: sig, mac: m}, nil
}

// Write adds body bytes; it never fails.
func (v *Verifier) Write(p []byte) (int, error) { return v.mac.Write(p) }

// Signature is the parsed header.
func (v *Verifier) Signature() Signature { return v.sig }

// Verify compares, in constant time, the MAC of what was written with the
// header's.
func (v *Verifier) Verify() error {
	want := hex.EncodeToString(v.mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(v.sig.MAC)) {
		return fmt.Errorf("%w: signature mismatch (a wrong key, or a call signed for another method, path, time, id or body)", ErrBadSignature)
	}
	return nil
}

// Verify checks a signature header against the request's method, target
// (path and query), body and key, refusing signatures made more than maxAge
// away from now. It returns the parsed signature, whose ID the caller must
// refuse to accept twice within maxAge (see ReplayCache).
func Verify(header string, key []byte, method, target string, body []byte, now time.Time, maxAge time.Duration) (Signature, error) {
	v, err := NewVerifier(header, key, method, target, now, maxAge)
	if err != nil {
		return Signature{}, err
	}
	_, _ = v.Write(body)
	if err := v.Verify(); err != nil {
		return Signature{}, err
	}
	return v.Signature(), nil
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
