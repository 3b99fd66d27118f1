package cloudhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics/internal/cloudhttp"
)

func TestEndpoint(t *testing.T) {
	for _, tt := range []struct{ addr, def, want, wantErr string }{
		{"", "https://monitoring.googleapis.com/", "https://monitoring.googleapis.com", ""},
		{"https://proxy.example.com/v3/", "https://d", "https://proxy.example.com/v3", ""},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080", ""},
		{"http://localhost:8080", "", "http://localhost:8080", ""},
		{"http://monitoring.example.com", "", "", "allowed on loopback only"},
		{"https://user:pw@example.com", "", "", "must not carry credentials"},
		{"ftp://example.com", "", "", "must be an https:// URL"},
		{"", "", "", "must be an https:// URL"},
	} {
		g := NewWithT(t)
		got, err := cloudhttp.Endpoint(tt.addr, tt.def)
		if tt.wantErr != "" {
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)), tt.addr)
			g.Expect(err.Error()).NotTo(ContainSubstring("pw"))
			continue
		}
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(tt.want))
	}
}

// TestClient: headers are added, redirects are not followed, and a body
// past the limit fails whether its length is announced or streamed.
func TestClient(t *testing.T) {
	g := NewWithT(t)
	big := bytes.Repeat([]byte("x"), cloudhttp.MaxBodyBytes+10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/header":
			_, _ = io.WriteString(w, r.Header.Get("X-Scope-OrgID"))
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.example.com/", http.StatusFound)
		case "/announced":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		case "/streamed":
			for i := 0; i < len(big); i += 1 << 20 {
				_, _ = w.Write(big[i:min(i+1<<20, len(big))])
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	c := cloudhttp.Client(false, http.Header{"X-Scope-OrgID": {"team-a"}})

	resp, err := c.Get(srv.URL + "/header")
	g.Expect(err).NotTo(HaveOccurred())
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(string(b)).To(Equal("team-a"))

	resp, err = c.Get(srv.URL + "/redirect")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusFound), "a redirect is returned, never followed")

	resp, err = c.Get(srv.URL + "/announced")
	if err == nil {
		_ = resp.Body.Close()
	}
	g.Expect(err).To(MatchError(cloudhttp.ErrBodyTooLarge))

	resp, err = c.Get(srv.URL + "/streamed")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.ContentLength).To(Equal(int64(-1)))
	_, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(err).To(MatchError(cloudhttp.ErrBodyTooLarge))
}

func TestExcerpt(t *testing.T) {
	g := NewWithT(t)
	g.Expect(cloudhttp.Excerpt("a\n  b\tc")).To(Equal("a b c"))
	long := cloudhttp.Excerpt(string(bytes.Repeat([]byte("é"), 400)))
	g.Expect(len(long)).To(BeNumerically("<=", 512))
	g.Expect(long).To(HaveSuffix("..."))
}
