package gitsync_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// fuzzHeaders are the header a fuzz input's value goes in.
var fuzzHeaders = []string{gitsync.GitHubSignatureHeader, gitsync.GitLabTokenHeader, webhooks.SignatureHeader, "X-Other"}

// FuzzReceiver sends arbitrary methods, paths, signature headers and bodies
// to the receiver of a real GitSync (on the test API server). Invariants: it
// never panics, never fails internally (500), and answers 202 only to a
// POST for that GitSync whose signature an independent check accepts.
func FuzzReceiver(f *testing.F) {
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{gitsync.ReceiverSecretKey: []byte(hookSecret)}}
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL: "https://example.invalid/repo.git", Interval: &metav1.Duration{Duration: time.Hour},
			Receiver: &sluicev1beta1.GitSyncReceiver{SecretRef: corev1.LocalObjectReference{Name: "hook"}},
		},
	}
	if err := env.Client.Create(ctx, secret); err != nil {
		f.Fatal(err)
	}
	if err := env.Client.Create(ctx, gs); err != nil {
		f.Fatal(err)
	}
	rc := &gitsync.Receiver{Client: env.Client, APIReader: env.Client, MinInterval: time.Nanosecond}

	push := []byte(`{"ref":"refs/heads/main","commits":[{"id":"abc","added":["a.yaml"],"modified":[],"removed":[]}]}`)
	f.Add("POST", "app", uint8(0), githubSig(hookSecret, push), push)
	f.Add("POST", "app", uint8(1), hookSecret, push)
	signed, err := webhooks.Sign([]byte(hookSecret), http.MethodPost, "/hooks/"+ns+"/app", push, time.Now(), webhooks.NewRequestID())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("POST", "app", uint8(2), signed, push)
	f.Add("POST", "app", uint8(0), "sha256="+strings.Repeat("0", 64), githubPush(3, 4))
	f.Add("POST", "app", uint8(2), "t=1,v1=00", push)
	f.Add("POST", "app", uint8(3), githubSig(hookSecret, push), push)
	f.Add("GET", "app", uint8(1), hookSecret, []byte{})
	f.Add("POST", "app/x", uint8(1), hookSecret, []byte("{"))
	f.Add("POST", "Not A Name!", uint8(0), "sha256=zz", []byte(nil))
	f.Add("POST", "missing", uint8(1), hookSecret, push)
	f.Fuzz(func(t *testing.T, method, name string, style uint8, value string, body []byte) {
		header := fuzzHeaders[int(style)%len(fuzzHeaders)]
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Method = method
		r.URL.Path = "/hooks/" + ns + "/" + name
		r.Header[header] = []string{value}
		rec := httptest.NewRecorder()
		rc.ServeHTTP(rec, r)
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %s %q: %s", method, r.URL.Path, rec.Body)
		}
		if rec.Code != http.StatusAccepted {
			return
		}
		if method != http.MethodPost || name != "app" {
			t.Fatalf("accepted %s %q", method, r.URL.Path)
		}
		if !independentlyValid(header, value, method, r.URL.RequestURI(), body) {
			t.Fatalf("accepted an unsigned or badly signed request: %s: %q", header, value)
		}
	})
}

// independentlyValid checks a signature without the receiver's code.
func independentlyValid(header, value, method, target string, body []byte) bool {
	switch header {
	case gitsync.GitHubSignatureHeader:
		return hmac.Equal([]byte(value), []byte(githubSig(hookSecret, body)))
	case gitsync.GitLabTokenHeader:
		return value == hookSecret
	case webhooks.SignatureHeader:
		m := hmac.New(sha256.New, []byte(hookSecret))
		sig, err := webhooks.ParseSignature(value)
		if err != nil {
			return false
		}
		m.Write([]byte(strings.Join([]string{"sluice-v2", method, target, sig.Timestamp, sig.ID, string(body)}, "\n")))
		return hmac.Equal([]byte(sig.MAC), []byte(hex.EncodeToString(m.Sum(nil))))
	}
	return false
}
