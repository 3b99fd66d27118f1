package saas_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/saas"
)

const key = "k3y-0123456789abcdef"

func get(ctx context.Context, c *saas.Client) error {
	var out map[string]any
	return c.Do(ctx, saas.Request{Method: http.MethodGet, Path: "/api", Header: http.Header{"X-Api-Key": {key}}, ErrorMessage: saas.JSONErrors}, &out)
}

// TestClient_RedirectKeepsKeysOnHost: a redirect to another host is
// refused before the key is sent there; one on the same host is followed.
func TestClient_RedirectKeepsKeysOnHost(t *testing.T) {
	g := NewWithT(t)
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" {
			leaked.Add(1)
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api":
			http.Redirect(w, r, other.URL+"/api", http.StatusFound)
		case "/same/api":
			http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
		case "/moved":
			g.Expect(r.Header.Get("X-Api-Key")).To(Equal(key))
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	c, err := saas.New("vendor", srv.URL, "", metrics.ProviderConfig{}, key)
	g.Expect(err).NotTo(HaveOccurred())
	err = get(context.Background(), c)
	g.Expect(err).To(MatchError(ContainSubstring("refused a redirect to " + strings.TrimPrefix(other.URL, "http://"))))
	g.Expect(leaked.Load()).To(BeZero())

	c, err = saas.New("vendor", srv.URL+"/same", "", metrics.ProviderConfig{}, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(context.Background(), c)).To(Succeed())
}

// TestClient_Deadline: the context's deadline ends a slow request.
func TestClient_Deadline(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := saas.New("vendor", srv.URL, "", metrics.ProviderConfig{}, key)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = get(ctx, c)
	g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "%v", err)
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}

// TestClient_ErrorMessages: vendor messages are quoted bounded and without
// the key, whatever their shape.
func TestClient_ErrorMessages(t *testing.T) {
	g := NewWithT(t)
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c, err := saas.New("vendor", srv.URL, "", metrics.ProviderConfig{}, key)
	g.Expect(err).NotTo(HaveOccurred())
	for in, want := range map[string]string{
		`{"errors":["a","b"]}`:                  "vendor answered 400 Bad Request: a; b",
		`{"error":"bad query"}`:                 "vendor answered 400 Bad Request: bad query",
		`{"error":{"message":"nested"}}`:        "vendor answered 400 Bad Request: nested",
		`{"message":"only a message"}`:          "vendor answered 400 Bad Request: only a message",
		`{"errors":[{"message":"object"}]}`:     "vendor answered 400 Bad Request: object",
		"key " + key + " refused":               "vendor answered 400 Bad Request: key *** refused",
		strings.Repeat("é", 400) + key:          "vendor answered 400 Bad Request: " + strings.Repeat("é", 256) + "...",
		strings.Repeat("x", 510) + key + "tail": "vendor answered 400 Bad Request: " + strings.Repeat("x", 510) + "**...",
	} {
		body.Store(in)
		g.Expect(get(context.Background(), c)).To(MatchError(want), in)
	}
}

// TestBaseURL: https anywhere, http on loopback only, no credentials,
// query or fragment; the default when no address is set.
func TestBaseURL(t *testing.T) {
	g := NewWithT(t)
	for in, want := range map[string]string{
		"":                              "https://api.example.com",
		"https://proxy.example:8443/x/": "https://proxy.example:8443/x",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://localhost:8080":         "http://localhost:8080",
		"http://[::1]:8080":             "http://[::1]:8080",
	} {
		u, err := saas.BaseURL(in, "https://api.example.com")
		g.Expect(err).NotTo(HaveOccurred(), in)
		g.Expect(u.String()).To(Equal(want))
	}
	for in, want := range map[string]string{
		"http://proxy.example:8080":     "http:// would send the API key in clear text",
		"https://user:pw@proxy.example": "must not carry credentials",
		"https://proxy.example/?key=1":  "must not have a query or fragment",
		"ftp://proxy.example":           "must be an https:// URL",
		"https://":                      "must be an https:// URL",
	} {
		_, err := saas.BaseURL(in, "")
		g.Expect(err).To(MatchError(ContainSubstring(want)), in)
		g.Expect(err.Error()).NotTo(ContainSubstring("pw"))
	}
	_, err := saas.BaseURL("", "")
	g.Expect(err).To(MatchError("no address: set the MetricTemplate's provider.address"))
}

// TestClient_BodyLimit: an answer of exactly MaxResponseBytes is read, one
// byte more is ErrTooLarge.
func TestClient_BodyLimit(t *testing.T) {
	g := NewWithT(t)
	var size atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(size.Load())
		_, _ = w.Write([]byte(`{"a":"` + strings.Repeat("x", n-8) + `"}`))
	}))
	defer srv.Close()
	c, err := saas.New("vendor", srv.URL, "", metrics.ProviderConfig{}, key)
	g.Expect(err).NotTo(HaveOccurred())
	size.Store(saas.MaxResponseBytes)
	g.Expect(get(context.Background(), c)).To(Succeed())
	size.Store(saas.MaxResponseBytes + 1)
	err = get(context.Background(), c)
	g.Expect(errors.Is(err, saas.ErrTooLarge)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError("vendor: the answer is larger than 8 MiB: narrow the query"))
}
