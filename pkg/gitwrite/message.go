package gitwrite

import (
	"errors"
	"fmt"
	"strings"
)

// Message is a commit message: a subject, a body and git trailers that
// record the provenance of a promotion, e.g.
//
//	Sluice-Bundle: podinfo@sha256:…
//	Sluice-Source-Stage: staging
//	Sluice-Verified-By: canary/podinfo release 3
//
// (git interpret-trailers --parse reads them back).
type Message struct {
	// Subject is the first line.
	Subject string
	// Body follows a blank line; optional.
	Body string
	// Trailers close the message, one "Key: value" a line.
	Trailers []Trailer
}

// Trailer is a git trailer, "Key: value".
type Trailer struct {
	Key   string
	Value string
}

// Bounds of a message, so that a caller's input cannot make huge commits.
const (
	maxSubject   = 200
	maxBody      = 16 << 10
	maxTrailers  = 32
	maxTrailerKV = 512
)

// validate refuses messages git would read differently from what was meant.
func (m Message) validate() error {
	switch {
	case strings.TrimSpace(m.Subject) == "":
		return errors.New("the commit subject is empty")
	case strings.ContainsAny(m.Subject, "\r\n"):
		return errors.New("the commit subject holds a line break")
	case len(m.Subject) > maxSubject:
		return fmt.Errorf("the commit subject is longer than %d bytes", maxSubject)
	case len(m.Body) > maxBody:
		return fmt.Errorf("the commit body is longer than %d bytes", maxBody)
	case len(m.Trailers) > maxTrailers:
		return fmt.Errorf("more than %d trailers", maxTrailers)
	}
	for _, t := range m.Trailers {
		if !validTrailerKey(t.Key) {
			return fmt.Errorf("trailer key %q is not a token of letters, digits and '-'", t.Key)
		}
		if strings.ContainsAny(t.Value, "\r\n") || len(t.Value) > maxTrailerKV {
			return fmt.Errorf("trailer %s: the value holds a line break or is longer than %d bytes", t.Key, maxTrailerKV)
		}
	}
	return nil
}

func validTrailerKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, r := range k {
		ok := r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// String is the message as committed.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(m.Subject) + "\n")
	if body := strings.TrimSpace(m.Body); body != "" {
		b.WriteString("\n" + body + "\n")
	}
	if len(m.Trailers) > 0 {
		b.WriteString("\n")
		for _, t := range m.Trailers {
			b.WriteString(t.Key + ": " + strings.TrimSpace(t.Value) + "\n")
		}
	}
	return b.String()
}
