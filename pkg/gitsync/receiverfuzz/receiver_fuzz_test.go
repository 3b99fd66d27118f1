package receiverfuzz

import (
	"bytes"
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
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

const (
	ns     = "apps"
	secret = "s3cret-token"
)

// fuzzHeaders are the header a fuzz input's value goes in.
var fuzzHeaders = []string{gitsync.GitHubSignatureHeader, gitsync.GitLabTokenHeader, webhooks.SignatureHeader, "X-Other"}

func githubSig(body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// FuzzReceiver sends arbitrary methods, paths, signature headers and bodies
// to the receiver of a GitSync with a receiver Secret. Invariants: it never
// panics, never fails internally (500), and answers 202 only to a POST for
// that GitSync whose signature an independent check accepts.
func FuzzReceiver(f *testing.F) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{gitsync.ReceiverSecretKey: []byte(secret)}},
		&sluicev1beta1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: sluicev1beta1.GitSyncSpec{
				URL:      "https://git.example.com/apps.git",
				Receiver: &sluicev1beta1.GitSyncReceiver{SecretRef: corev1.LocalObjectReference{Name: "hook"}},
			},
		},
		&sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}, Spec: sluicev1beta1.GitSyncSpec{URL: "https://git.example.com/apps.git"}},
	).Build()
	rc := &gitsync.Receiver{Client: c, APIReader: c, MinInterval: time.Nanosecond}

	push := []byte(`{"ref":"refs/heads/main","commits":[{"id":"abc","added":["a.yaml"],"modified":[],"removed":[]}]}`)
	signed, err := webhooks.Sign([]byte(secret), http.MethodPost, "/hooks/"+ns+"/app", push, time.Now(), webhooks.NewRequestID())
	if err != nil {
		f.Fatal(err)
	}
	// The fixture works: a signed push is accepted, so refusals below are
	// the receiver's decisions, not a broken setup.
	for _, h := range []map[string]string{{gitsync.GitHubSignatureHeader: githubSig(push)}, {gitsync.GitLabTokenHeader: secret}} {
		r := httptest.NewRequest(http.MethodPost, "/hooks/"+ns+"/app", bytes.NewReader(push))
		for k, v := range h {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		rc.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			f.Fatalf("a signed push was answered %d: %s", rec.Code, rec.Body)
		}
	}
	f.Add("POST", "app", uint8(0), githubSig(push), push)
	f.Add("POST", "app", uint8(1), secret, push)
	f.Add("POST", "app", uint8(2), signed, push)
	f.Add("POST", "app", uint8(0), "sha256="+strings.Repeat("0", 64), push)
	f.Add("POST", "app", uint8(2), "t=1,v1=00", push)
	f.Add("POST", "app", uint8(3), githubSig(push), push)
	f.Add("GET", "app", uint8(1), secret, []byte{})
	f.Add("POST", "app/x", uint8(1), secret, []byte("{"))
	f.Add("POST", "plain", uint8(1), secret, push)
	f.Add("POST", "Not A Name!", uint8(0), "sha256=zz", []byte(nil))
	f.Add("POST", "missing", uint8(1), secret, push)
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
		return hmac.Equal([]byte(value), []byte(githubSig(body)))
	case gitsync.GitLabTokenHeader:
		return value == secret
	case webhooks.SignatureHeader:
		sig, err := webhooks.ParseSignature(value)
		if err != nil {
			return false
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(strings.Join([]string{"sluice-v2", method, target, sig.Timestamp, sig.ID, string(body)}, "\n")))
		return hmac.Equal([]byte(sig.MAC), []byte(hex.EncodeToString(m.Sum(nil))))
	}
	return false
}
