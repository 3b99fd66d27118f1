package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestClient_RetriesOn503ThenSucceeds(t *testing.T) {
	g := NewWithT(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c := New()
	c.Backoff = 10 * time.Millisecond
	hook := sluicev1beta1.CanaryWebhook{Name: "flaky", URL: srv.URL, Retries: 3}
	g.Expect(c.Call(context.Background(), testCanary(), hook, "")).To(Succeed())
	g.Expect(calls.Load()).To(Equal(int32(3)))

	// Without retries the first 503 is the answer; a 4xx other than 429 is never retried.
	calls.Store(0)
	hook.Retries = 0
	g.Expect(c.Call(context.Background(), testCanary(), hook, "")).To(MatchError(ContainSubstring("503")))
	g.Expect(calls.Load()).To(Equal(int32(1)))
}

func TestClient_NoRetryOnClientError(t *testing.T) {
	g := NewWithT(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	c := New()
	c.Backoff = time.Millisecond
	err := c.Call(context.Background(), testCanary(), sluicev1beta1.CanaryWebhook{Name: "bad", URL: srv.URL, Retries: 5}, "")
	g.Expect(err).To(MatchError(ContainSubstring("400 Bad Request")))
	g.Expect(calls.Load()).To(Equal(int32(1)))
}

func TestClient_BodyReadIsBounded(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.Copy(w, io.LimitReader(neverEnding('x'), 50<<20)) // 50 MiB
	}))
	defer srv.Close()
	err := New().Call(context.Background(), testCanary(), sluicev1beta1.CanaryWebhook{Name: "big", URL: srv.URL}, "")
	g.Expect(err).To(MatchError(ContainSubstring("403 Forbidden")))
	g.Expect(len(err.Error())).To(BeNumerically("<", 700))
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestClient_SignsWithTheHookSecret verifies the signature with the
// documented recipe (Verify) and refuses a tampered body.
func TestClient_SignsWithTheHookSecret(t *testing.T) {
	g := NewWithT(t)
	var header, method, target string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header, method, target = r.Header.Get(SignatureHeader), r.Method, r.URL.RequestURI()
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	c := New()
	c.Secret = func(_ context.Context, ns, name string) ([]byte, error) {
		g.Expect(ns + "/" + name).To(Equal("test/hook-key"))
		return []byte("sh4red-key"), nil
	}
	hook := sluicev1beta1.CanaryWebhook{Name: "signed", URL: srv.URL + "/gate/check?team=web", SecretRef: &corev1.LocalObjectReference{Name: "hook-key"}}
	g.Expect(c.Call(context.Background(), testCanary(), hook, sluicev1beta1.CanaryPhaseProgressing)).To(Succeed())
	g.Expect(header).To(MatchRegexp(`^t=\d+,id=[0-9a-f]{32},v2=[0-9a-f]{64}$`))
	g.Expect(target).To(Equal("/gate/check?team=web"))
	key := []byte("sh4red-key")
	now := time.Now()
	sig, err := Verify(header, key, method, target, body, now, 5*time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(header).To(ContainSubstring("id=" + sig.ID))
	_, err = Verify(header, []byte("other-key"), method, target, body, now, 5*time.Minute)
	g.Expect(err).To(MatchError(ErrBadSignature))
	_, err = Verify(header, key, method, target, append(body, ' '), now, 5*time.Minute)
	g.Expect(err).To(MatchError(ErrBadSignature))
	_, err = Verify(header, key, method, "/gate/open", body, now, 5*time.Minute)
	g.Expect(err).To(MatchError(ContainSubstring("signature mismatch")), "another path")
	_, err = Verify(header, key, http.MethodPut, target, body, now, 5*time.Minute)
	g.Expect(err).To(MatchError(ContainSubstring("signature mismatch")), "another method")
	_, err = Verify(header, key, method, target, body, now.Add(time.Hour), 5*time.Minute)
	g.Expect(err).To(MatchError(ContainSubstring("outside the accepted window")))
	_, err = Verify("v2=abc", []byte("k"), method, target, body, now, time.Minute)
	g.Expect(err).To(MatchError(ErrBadSignature))
	g.Expect(strings.Contains(string(body), "sh4red-key")).To(BeFalse())
}

// TestEventQueue_DeliversWithoutBlocking checks that events reach the event
// hooks with Flagger's metadata, that a slow receiver does not block
// Enqueue, and that a full queue drops and counts.
func TestEventQueue_DeliversWithoutBlocking(t *testing.T) {
	g := NewWithT(t)
	var mu sync.Mutex
	var got []map[string]any
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	defer srv.Close()
	c := testCanary()
	c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Webhooks: []sluicev1beta1.CanaryWebhook{
		{Name: "events", Type: "event", URL: srv.URL, Metadata: map[string]string{"team": "web", "eventType": "spoofed"}},
		{Name: "load", Type: "rollout", URL: srv.URL},
	}}
	q := NewEventQueue(New(), logr.Discard(), 2, 1)
	start := time.Now()
	for i := 0; i < 5; i++ {
		q.Enqueue(c, i == 0, "event message", time.UnixMilli(1700000000000))
	}
	g.Expect(time.Since(start)).To(BeNumerically("<", time.Second), "Enqueue blocked on a slow receiver")
	g.Expect(q.Dropped()).To(BeNumerically(">=", 2), "a full queue must drop")
	close(release)
	g.Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(got) }, 5*time.Second).Should(BeNumerically(">=", 2))
	mu.Lock()
	md := got[0]["metadata"].(map[string]any)
	mu.Unlock()
	g.Expect(md).To(HaveKeyWithValue("team", "web"))
	g.Expect(md).To(HaveKeyWithValue("eventMessage", "event message"))
	g.Expect(md).To(HaveKeyWithValue("eventType", "Warning"))
	g.Expect(md).To(HaveKeyWithValue("timestamp", "1700000000000"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.Stop(ctx)
}
