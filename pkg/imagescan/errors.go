package imagescan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Reason says why a scan failed, in the words a controller puts in a
// condition's reason.
type Reason string

// The reasons of an *Error.
const (
	// ReasonRegistryUnreachable: no answer (connection refused, DNS, TLS,
	// timeout) or the registry is overloaded (429, 5xx). Transient.
	ReasonRegistryUnreachable Reason = "RegistryUnreachable"
	// ReasonUnauthorized: the registry refused the credentials, or asked for
	// some and there were none (401, 403). The user must fix the Secret.
	ReasonUnauthorized Reason = "Unauthorized"
	// ReasonRepositoryNotFound: the registry does not know the repository.
	ReasonRepositoryNotFound Reason = "RepositoryNotFound"
	// ReasonNoMatchingTag: the repository has no tag that the policy
	// selects (yet); the next scan may find one.
	ReasonNoMatchingTag Reason = "NoMatchingTag"
	// ReasonInvalidPolicy: the range or pattern does not parse.
	ReasonInvalidPolicy Reason = "InvalidPolicy"
	// ReasonTooManyTags: the repository has more tags than the scanner
	// lists; a filter does not help, the cap is on the listing.
	ReasonTooManyTags Reason = "TooManyTags"
	// ReasonInvalidRequest: the repository name does not parse, or plain
	// HTTP was asked for (or needed) where it is not allowed.
	ReasonInvalidRequest Reason = "InvalidRequest"
	// ReasonInvalidCredentials: the credentials Secret is of the wrong type
	// or does not parse.
	ReasonInvalidCredentials Reason = "InvalidCredentials"
	// ReasonRegistryError: the registry answered something unexpected
	// (e.g. a malformed or oversized response). Transient.
	ReasonRegistryError Reason = "RegistryError"
)

// Error is every error that Latest returns. Its message never contains
// credentials, so it can go to a condition, an event or a log as is.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// TagsSeen is how many tags were listed, for NoMatchingTag and
	// TooManyTags (for the latter, how many had been listed when the scan
	// stopped).
	TagsSeen int
	// text is the complete message, redacted when it was built, so that no
	// later formatting can expose a secret.
	text string
	// err is the cause, for errors.Is and errors.As.
	err error
}

// Error returns the message.
func (e *Error) Error() string { return e.text }

// GoString keeps %#v from printing the cause's fields.
func (e *Error) GoString() string {
	return fmt.Sprintf("imagescan.Error{Reason: %q, %q}", e.Reason, e.text)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// Transient reports whether retrying later, unchanged, may succeed: the
// controller returns such errors for backoff, and marks the others Stalled
// (or, for NoMatchingTag, waits for the next scan).
func (e *Error) Transient() bool {
	return e.Reason == ReasonRegistryUnreachable || e.Reason == ReasonRegistryError
}

// ReasonOf returns the reason of an *Error in err's chain, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// IsRegistryUnreachable reports a RegistryUnreachable error.
func IsRegistryUnreachable(err error) bool { return ReasonOf(err) == ReasonRegistryUnreachable }

// IsUnauthorized reports an Unauthorized error.
func IsUnauthorized(err error) bool { return ReasonOf(err) == ReasonUnauthorized }

// IsRepositoryNotFound reports a RepositoryNotFound error.
func IsRepositoryNotFound(err error) bool { return ReasonOf(err) == ReasonRepositoryNotFound }

// IsNoMatchingTag reports a NoMatchingTag error.
func IsNoMatchingTag(err error) bool { return ReasonOf(err) == ReasonNoMatchingTag }

// IsInvalidPolicy reports an InvalidPolicy error.
func IsInvalidPolicy(err error) bool { return ReasonOf(err) == ReasonInvalidPolicy }

// IsTooManyTags reports a TooManyTags error.
func IsTooManyTags(err error) bool { return ReasonOf(err) == ReasonTooManyTags }

// errPlainHTTP is the cause when the transport refused a plain HTTP
// request; see guardTransport.
var errPlainHTTP = errors.New("plain HTTP refused")

// errBodyTooLarge is the cause when a response body passed its bound.
var errBodyTooLarge = errors.New("response body too large")

// step names the operation that failed, for the message and for the
// meaning of a 404.
type step string

const (
	stepList step = "list tags of"
	stepHead step = "resolve the digest of"
)

// classify turns a go-containerregistry or network error into an *Error.
// secrets are removed from the message: neither the library nor the
// registry should echo credentials, but a message that reaches a condition
// must not depend on that.
func classify(err error, s step, ref string, secrets []string) *Error {
	var done *Error
	if errors.As(err, &done) {
		return done
	}
	reason, hint := reasonFor(err, s)
	msg := fmt.Sprintf("failed to %s %s: %s", s, ref, hint)
	if hint == "" {
		msg = fmt.Sprintf("failed to %s %s", s, ref)
	}
	return &Error{Reason: reason, text: redact(msg+": "+err.Error(), secrets), err: err}
}

func reasonFor(err error, s step) (Reason, string) {
	var te *transport.Error
	if errors.As(err, &te) {
		return reasonForStatus(te, s)
	}
	// The order matters: on a loopback registry go-containerregistry tries
	// HTTPS and then HTTP, and reports both failures. The HTTPS one says
	// what is wrong (no such host, untrusted certificate, nothing
	// listening); the refused HTTP fallback matters only when HTTPS failed
	// because the server speaks plain HTTP.
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		authErr x509.UnknownAuthorityError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonRegistryUnreachable, "no answer before the scan's timeout"
	case errors.Is(err, context.Canceled):
		return ReasonRegistryUnreachable, "the scan was cancelled"
	case errors.As(err, &dnsErr):
		return ReasonRegistryUnreachable, "the registry's host name does not resolve"
	case errors.As(err, &certErr), errors.As(err, &authErr):
		return ReasonRegistryUnreachable, "the registry's TLS certificate is not trusted"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return ReasonRegistryUnreachable, "the registry cannot be reached"
	case errors.Is(err, errPlainHTTP):
		return ReasonInvalidRequest, "the registry needs plain HTTP, which is allowed only for loopback registries with insecure set"
	case errors.Is(err, errBodyTooLarge):
		return ReasonRegistryError, "the registry's response is larger than the scanner reads"
	case errors.As(err, &recErr):
		return ReasonRegistryUnreachable, "the registry does not speak TLS"
	case errors.As(err, &netErr):
		return ReasonRegistryUnreachable, "the registry cannot be reached"
	}
	return ReasonRegistryError, ""
}

func reasonForStatus(te *transport.Error, s step) (Reason, string) {
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return ReasonUnauthorized, "the registry refused the credentials (check the pull Secret)"
		case transport.NameUnknownErrorCode:
			return ReasonRepositoryNotFound, "the registry has no such repository"
		}
	}
	switch code := te.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return ReasonUnauthorized, "the registry refused the credentials (check the pull Secret)"
	case code == http.StatusNotFound && s == stepList:
		return ReasonRepositoryNotFound, "the registry has no such repository"
	case code == http.StatusNotFound:
		// Listed a moment ago, gone now: deleted in between. The next scan
		// lists again.
		return ReasonRegistryError, "the tag disappeared after it was listed"
	case code == http.StatusTooManyRequests || code >= 500:
		return ReasonRegistryUnreachable, "the registry is overloaded or failing"
	}
	return ReasonRegistryError, ""
}

// redact replaces every secret in s. Secrets shorter than 4 characters are
// left alone: replacing "a" would garble the message without protecting
// anything.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
