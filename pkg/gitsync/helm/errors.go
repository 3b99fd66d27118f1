package helm

import (
	"errors"
	"net/http"

	"oras.land/oras-go/v2/registry/remote/errcode"
)

// transientError marks a failure that may pass by itself (the network, a
// server error, a rate limit), as opposed to one only a change of the chart,
// its version or its values can fix.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// IsTransient tells whether err may pass if the render is tried again.
func IsTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// transientStatus tells whether an HTTP status may pass by itself.
func transientStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// classifyRegistry marks a registry error transient unless the registry
// answered with a client error (not found, unauthorized, ...) or sent too much.
func classifyRegistry(err error) error {
	var er *errcode.ErrorResponse
	if errors.Is(err, errTooLarge) || errors.As(err, &er) && !transientStatus(er.StatusCode) {
		return err
	}
	return &transientError{err: err}
}
