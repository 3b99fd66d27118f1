package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Post sends the payload as given, signed with the key of the hook's
// Secret in the namespace asked for, and makes one attempt: a 500 is an
// error quoting the answer, not retried.
func TestClient_Post(t *testing.T) {
	g := NewWithT(t)
	key := []byte("gate-key")
	var calls atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusOK)
	var got Payload
	var verifyErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		_, verifyErr = Verify(r.Header.Get(SignatureHeader), key, r.Method, r.URL.RequestURI(), body, time.Now(), time.Minute)
		_ = json.Unmarshal(body, &got)
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, `{"message": "gate web.apps is closed"}`)
	}))
	defer srv.Close()

	c := New()
	c.Secret = func(_ context.Context, ns, name string) ([]byte, error) {
		if ns != "apps" || name != "gate-key" {
			return nil, errors.New("unexpected Secret " + ns + "/" + name)
		}
		return key, nil
	}
	hook := sluicev1beta1.CanaryWebhook{Name: "release-gate", URL: srv.URL + "/gate/check", Retries: 3,
		SecretRef: &corev1.LocalObjectReference{Name: "gate-key"}}
	p := Payload{Name: "web", Namespace: "apps", Phase: "Promoting", Checksum: "0123456789abcdef", Type: "confirm-promotion",
		Metadata: map[string]string{"stage": "production"}}
	g.Expect(c.Post(context.Background(), "apps", hook, p)).To(Succeed())
	g.Expect(verifyErr).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(p))

	status.Store(http.StatusInternalServerError)
	err := c.Post(context.Background(), "apps", hook, p)
	g.Expect(err).To(MatchError(ContainSubstring(`webhook release-gate returned 500 Internal Server Error: "{\"message\": \"gate web.apps is closed\"}"`)))
	g.Expect(calls.Load()).To(BeEquivalentTo(2))

	// A Secret that cannot be read: no call, the error says which.
	c.Secret = func(context.Context, string, string) ([]byte, error) {
		return nil, errors.New("secret apps/gate-key not found")
	}
	g.Expect(c.Post(context.Background(), "apps", hook, p)).To(MatchError(ContainSubstring("webhook release-gate: secret apps/gate-key not found")))
	g.Expect(calls.Load()).To(BeEquivalentTo(2))
}
