package httpquery_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/internal/httpquery"
)

// TestAddress: https anywhere, http on loopback, or elsewhere only without
// credentials; never user info in the URL, and never quoted back.
func TestAddress(t *testing.T) {
	g := NewWithT(t)
	for _, ok := range []struct {
		raw       string
		cleartext bool
	}{{"https://graphite.example/x", false}, {"http://127.0.0.1:8080", false}, {"http://localhost:1", false},
		{"http://[::1]:9090", false}, {"http://graphite.monitoring", true}} {
		_, err := httpquery.Address("t", ok.raw, ok.cleartext)
		g.Expect(err).NotTo(HaveOccurred(), ok.raw)
	}
	for raw, want := range map[string]string{
		"http://graphite.monitoring":    "http:// would send the credentials in clear text",
		"ftp://graphite.example":        `the t address "ftp://graphite.example" must be an https:// URL`,
		"https://u:s3cret@h.example/x":  "must not carry credentials",
		"https//u:s3cret@h.example/x y": `the t address "***@h.example/x y" must be an https:// URL`,
	} {
		_, err := httpquery.Address("t", raw, false)
		g.Expect(err).To(MatchError(metrics.ErrInvalidConfig), raw)
		g.Expect(err).To(MatchError(ContainSubstring(want)), raw)
		g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
	}
}

// TestMessage: JSON error fields first, else the text, on one bounded line.
func TestMessage(t *testing.T) {
	g := NewWithT(t)
	g.Expect(httpquery.Message([]byte(`{"code":"invalid","message":"bad query"}`))).To(Equal("bad query"))
	g.Expect(httpquery.Message([]byte(`{"error":"type error"}`))).To(Equal("type error"))
	g.Expect(httpquery.Message([]byte(`{"errors":["a","b"]}`))).To(Equal(`["a","b"]`))
	g.Expect(httpquery.Message([]byte("line one\n\tline two\n"))).To(Equal("line one line two"))
	long := httpquery.Message([]byte(strings.Repeat("é", 1000)))
	g.Expect(len(long)).To(BeNumerically("<=", 515))
	g.Expect(long).To(HaveSuffix("..."))
	g.Expect(httpquery.StatusError("x", 401, []byte("token abc123 revoked"), "abc123")).To(MatchError("x answered HTTP 401: token *** revoked"))
}

// TestBounded: a body of exactly MaxBody bytes reads whole; one byte more
// is ErrTooLarge, never a silently cut document.
func TestBounded(t *testing.T) {
	for _, tc := range []struct {
		size    int
		wantErr bool
	}{{httpquery.MaxBody, false}, {httpquery.MaxBody + 1, true}} {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.Expect(r.Header.Get("X-Tenant")).To(Equal("a"))
			_, _ = io.Copy(w, io.LimitReader(zeros{}, int64(tc.size)))
		}))
		c := httpquery.Headers(httpquery.Bounded(httpquery.Client(false)), http.Header{"X-Tenant": {"a"}})
		resp, err := c.Get(srv.URL) //nolint:noctx // loopback test server
		g.Expect(err).NotTo(HaveOccurred())
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		srv.Close()
		if tc.wantErr {
			g.Expect(err).To(MatchError(httpquery.ErrTooLarge))
		} else {
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n).To(Equal(int64(tc.size)))
		}
		_, err = httpquery.ReadBody(io.LimitReader(zeros{}, int64(tc.size)))
		g.Expect(err != nil).To(Equal(tc.wantErr))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
