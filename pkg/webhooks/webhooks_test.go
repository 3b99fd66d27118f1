package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func testCanary() *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Status:     sluicev1beta1.CanaryStatus{Revision: "abc123", CanaryWeight: 20},
	}
}

func TestClient_CallSendsFlaggerPayload(t *testing.T) {
	g := NewWithT(t)
	var got map[string]any
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contentType = r.Header.Get("Content-Type")
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &got)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	hook := sluicev1beta1.CanaryWebhook{Name: "load", Type: "pre-rollout", URL: srv.URL, Metadata: map[string]string{"cmd": "hey"}}
	g.Expect(New().Call(context.Background(), testCanary(), hook, sluicev1beta1.CanaryPhaseProgressing)).To(Succeed())
	g.Expect(contentType).To(Equal("application/json"))
	g.Expect(got).To(Equal(map[string]any{
		"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc123",
		"metadata": map[string]any{"cmd": "hey"}, "revision": "abc123", "canaryWeight": float64(20), "type": "pre-rollout",
	}))
}

func TestClient_CallStatusCodes(t *testing.T) {
	for _, tt := range []struct {
		code    int
		body    string
		wantErr string
	}{
		{code: 200}, {code: 202}, {code: 204}, {code: 299},
		{code: 403, body: "gate closed", wantErr: `403 Forbidden: "gate closed"`},
		{code: 500, body: strings.Repeat("x", 2000), wantErr: "500 Internal Server Error"},
		{code: 302, wantErr: "(empty body)"},
	} {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.code == 302 {
				w.Header().Set("Location", "http://127.0.0.1:1/")
			}
			w.WriteHeader(tt.code)
			_, _ = w.Write([]byte(tt.body))
		}))
		hook := sluicev1beta1.CanaryWebhook{Name: "gate", URL: srv.URL}
		err := New().Call(context.Background(), testCanary(), hook, sluicev1beta1.CanaryPhaseProgressing)
		if tt.wantErr == "" {
			g.Expect(err).NotTo(HaveOccurred(), "status %d", tt.code)
		} else {
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)), "status %d", tt.code)
			g.Expect(len(err.Error())).To(BeNumerically("<", 700), "the body quoted in the error must be truncated")
		}
		srv.Close()
	}
}

func TestClient_CallTimesOut(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	hook := sluicev1beta1.CanaryWebhook{Name: "slow", URL: srv.URL, Timeout: "200ms"}
	start := time.Now()
	err := New().Call(context.Background(), testCanary(), hook, sluicev1beta1.CanaryPhaseProgressing)
	g.Expect(err).To(MatchError(ContainSubstring("webhook slow failed")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}

func TestClient_DisableTLS(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	hook := sluicev1beta1.CanaryWebhook{Name: "tls", URL: srv.URL}
	g.Expect(New().Call(context.Background(), testCanary(), hook, "")).To(MatchError(ContainSubstring("certificate")))
	hook.DisableTLS = true
	g.Expect(New().Call(context.Background(), testCanary(), hook, "")).To(Succeed())
}
