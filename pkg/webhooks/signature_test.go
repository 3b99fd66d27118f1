package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The example of docs/webhooks.md.
const (
	docKey    = "s3cr3t"
	docTarget = "/gate/check"
	docTS     = 1700000000
	docID     = "6f1c2a9e0b7d4c3a8e5f1a2b3c4d5e6f"
	docBody   = `{"name":"podinfo","namespace":"test"}`
	docMAC    = "b52c48ba4c88c78aa0f3cfd1f6fb2f521d11ceb7b2ef8fdee5ec5b5bd9e5ebd3"
)

// TestSigningString: the MAC is HMAC-SHA256 over exactly the signing string
// of docs/webhooks.md, and the documented example holds.
func TestSigningString(t *testing.T) {
	g := NewWithT(t)
	got, err := Sign([]byte(docKey), http.MethodPost, docTarget, []byte(docBody), time.Unix(docTS, 0), docID)
	g.Expect(err).NotTo(HaveOccurred())
	m := hmac.New(sha256.New, []byte(docKey))
	m.Write([]byte("sluice-v2\nPOST\n/gate/check\n1700000000\n" + docID + "\n" + docBody))
	want := hex.EncodeToString(m.Sum(nil))
	g.Expect(got).To(Equal("t=1700000000,id=" + docID + ",v2=" + want))
	g.Expect(want).To(Equal(docMAC), "update the example in docs/webhooks.md")

	for name, f := range map[string]func() (string, error){
		"newline in target": func() (string, error) {
			return Sign([]byte(docKey), "POST", "/a\n1", nil, time.Now(), docID)
		},
		"comma in id":  func() (string, error) { return Sign([]byte(docKey), "POST", "/", nil, time.Now(), "a,v2=b") },
		"empty id":     func() (string, error) { return Sign([]byte(docKey), "POST", "/", nil, time.Now(), "") },
		"blank method": func() (string, error) { return Sign([]byte(docKey), "PO ST", "/", nil, time.Now(), docID) },
	} {
		_, err := f()
		g.Expect(err).To(MatchError(ErrBadSignature), name)
	}
}

// TestClient_EachAttemptHasItsOwnID: retries are new requests, so a
// verifier that saw the first attempt accepts the next.
func TestClient_EachAttemptHasItsOwnID(t *testing.T) {
	g := NewWithT(t)
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig, err := ParseSignature(r.Header.Get(SignatureHeader))
		g.Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, sig.ID)
		if len(ids) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := New()
	c.Backoff = time.Millisecond
	c.Secret = func(context.Context, string, string) ([]byte, error) { return []byte("k"), nil }
	hook := sluicev1beta1.CanaryWebhook{Name: "flaky", URL: srv.URL, Retries: 3, SecretRef: &corev1.LocalObjectReference{Name: "s"}}
	g.Expect(c.Call(context.Background(), testCanary(), hook, "")).To(Succeed())
	g.Expect(ids).To(HaveLen(3))
	g.Expect(ids[0]).NotTo(Equal(ids[1]))
	g.Expect(ids[1]).NotTo(Equal(ids[2]))
}

func TestReplayCache(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	now := time.Unix(docTS, 0)
	c := NewReplayCache(2)
	c.now = func() time.Time { return now }
	claim := func(id string) (bool, error) { return c.Claim(ctx, id, now.Add(time.Minute)) }

	g.Expect(claim("a")).To(BeTrue())
	g.Expect(claim("a")).To(BeFalse(), "a replay")
	g.Expect(claim("b")).To(BeTrue())
	_, err := claim("c")
	g.Expect(err).To(MatchError(ErrReplayCacheFull), "bounded: refuse rather than forget a fresh id")
	now = now.Add(2 * time.Minute)
	g.Expect(claim("a")).To(BeTrue(), "expired ids are forgotten")
	g.Expect(claim("c")).To(BeTrue())
}

// FuzzVerifySignature: Verify never panics on any header; a signature made
// by Sign over (method, target, t, id, body) verifies; changing any one of
// them, or the key, makes it fail.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(docKey), "POST", docTarget, int64(docTS), docID, []byte(docBody), "t=1700000000,id="+docID+",v2="+docMAC)
	f.Add([]byte("k"), "GET", "/gate/open?x=1&y=%2F", int64(0), "a", []byte{}, "v1=abc,t=1")
	f.Add([]byte(""), "post", "/", int64(-1), "A.b_c-1", []byte("\x00\xff"), "t=,id=,v2=")
	f.Add([]byte("key"), "PUT", "/rollback/open", int64(1<<40), "x", []byte("body"), ",,,=,t=99999999999999999999,id=\n,v2=zz")
	f.Fuzz(func(t *testing.T, key []byte, method, target string, ts int64, id string, body []byte, header string) {
		now := time.Unix(ts, 0)
		// Any header: no panic, and a verified header is well formed.
		if sig, err := Verify(header, key, method, target, body, now, time.Minute); err == nil {
			if sig.Timestamp == "" || !validID(sig.ID) {
				t.Fatalf("accepted a malformed header %q", header)
			}
		}
		signed, err := Sign(key, method, target, body, now, id)
		if err != nil {
			if checkFields(method, target, id) == nil {
				t.Fatalf("Sign refused valid fields: %v", err)
			}
			return
		}
		if _, err := Verify(signed, key, method, target, body, now, time.Minute); err != nil {
			t.Fatalf("a valid signature failed: %v", err)
		}
		mustFail := func(what string, key []byte, method, target string, at time.Time, header string, body []byte) {
			if _, err := Verify(header, key, method, target, body, at, time.Minute); err == nil {
				t.Fatalf("verified with another %s", what)
			}
		}
		mustFail("method", key, method+"X", target, now, signed, body)
		mustFail("target", key, method, target+"/", now, signed, body)
		mustFail("body", key, method, target, now, signed, append(body[:len(body):len(body)], 'x'))
		mustFail("key", append(key[:len(key):len(key)], 'x'), method, target, now, signed, body)
		other, err := Sign(key, method, target, body, now.Add(time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		// A header whose t was changed, with the MAC of the original.
		mustFail("timestamp", key, method, target, now, replaceField(other, "v2", fieldOf(signed, "v2")), body)
		mustFail("stale time", key, method, target, now.Add(2*time.Minute), signed, body)
		otherID := id + "x"
		if len(otherID) > MaxRequestIDLength {
			otherID = "y" + id[1:]
			if id[0] == 'y' {
				otherID = "z" + id[1:]
			}
		}
		mustFail("id", key, method, target, now, replaceField(signed, "id", otherID), body)
	})
}

func fieldOf(header, k string) string {
	sig, _ := ParseSignature(header)
	switch k {
	case "t":
		return sig.Timestamp
	case "id":
		return sig.ID
	}
	return sig.MAC
}

// replaceField rebuilds header with field k set to v.
func replaceField(header, k, v string) string {
	sig, _ := ParseSignature(header)
	switch k {
	case "t":
		sig.Timestamp = v
	case "id":
		sig.ID = v
	case "v2":
		sig.MAC = v
	}
	return "t=" + sig.Timestamp + ",id=" + sig.ID + ",v2=" + sig.MAC
}
