package gitsync

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// The receiver reads GitSyncs, patches their sync-now annotation, and reads
// the webhook Secrets (uncached).

// +kubebuilder:rbac:groups=sluice.dev,resources=gitsyncs,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Receiver headers and limits.
const (
	// ReceiverSecretKey is the key of the receiver Secret holding the webhook secret.
	ReceiverSecretKey = "token"
	// GitHubSignatureHeader is "sha256=<hex HMAC-SHA256(secret, body)>".
	GitHubSignatureHeader = "X-Hub-Signature-256"
	// GitLabTokenHeader is the secret itself.
	GitLabTokenHeader = "X-Gitlab-Token" //nolint:gosec // G101: a header's name, not a credential.
	// MaxReceiverBody bounds the body of a push webhook: GitHub push
	// payloads of many commits are several MiB. The body is streamed through
	// the HMAC, never held, so the bound limits work, not memory.
	MaxReceiverBody = 8 << 20
	// receiverMaxAge bounds the age of a Sluice signature.
	receiverMaxAge = 5 * time.Minute
	// receiverMinInterval is the least time between two accepted calls for one GitSync.
	receiverMinInterval = time.Second
	// receiverBuffer is the read buffer of a body.
	receiverBuffer = 32 << 10
)

// Receiver takes push webhooks on POST /hooks/<namespace>/<name>. The
// call is verified with that GitSync's receiver Secret; a push payload
// (GitHub, Gitea, Forgejo, GitLab) then requests a sync now of every
// GitSync in the namespace that follows the pushed repository and ref, and
// only those (see route); a call without one (Sluice-signed, or a body
// without repository URLs) requests a sync of the GitSync it names. A sync
// is requested by setting the sync-requested-at annotation. It answers 401 for a missing or bad signature, 404 for an
// unknown GitSync or one without spec.receiver, 413 for a body over
// MaxReceiverBody (8 MiB), 429 when called too often, and 202 on success.
// The body is verified while it is read, in receiverBuffer steps.
type Receiver struct {
	// Client reads GitSyncs and patches their annotation.
	Client client.Client
	// APIReader reads the receiver Secrets.
	APIReader client.Reader
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// MinInterval between two accepted calls for one GitSync; 1s when zero.
	MinInterval time.Duration
	// Replay remembers the ids of Sluice-signed calls; an in-memory cache
	// (per replica) when nil. A replay could only request a sync again.
	Replay webhooks.ReplayGuard

	mu     sync.Mutex
	last   map[types.NamespacedName]time.Time
	replay webhooks.ReplayGuard
}

var _ http.Handler = (*Receiver)(nil)

func (rc *Receiver) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := ctrl.Log.WithName("gitsync-receiver")
	rest, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	parts := strings.Split(rest, "/")
	// Names that cannot exist are not looked up.
	if !ok || len(parts) != 2 || len(validation.IsDNS1123Label(parts[0])) > 0 || len(validation.IsDNS1123Subdomain(parts[1])) > 0 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Refuse what can be refused from the headers, before any work.
	if signatureStyle(r.Header) == "" {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > MaxReceiverBody {
		http.Error(w, fmt.Sprintf("body larger than %d bytes", MaxReceiverBody), http.StatusRequestEntityTooLarge)
		return
	}
	key := types.NamespacedName{Namespace: parts[0], Name: parts[1]}
	ctx := r.Context()

	gs := &sluicev1beta1.GitSync{}
	if err := rc.Client.Get(ctx, key, gs); err != nil {
		if apierrors.IsNotFound(err) {
			http.NotFound(w, r)
			return
		}
		log.Error(err, "failed to read the GitSync", "GitSync", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if gs.Spec.Receiver == nil || gs.Spec.Receiver.SecretRef.Name == "" {
		http.NotFound(w, r)
		return
	}
	secret, err := rc.secret(ctx, gs)
	if err != nil {
		// The reason is logged, not returned: it would tell a caller about Secrets.
		log.Error(err, "the receiver Secret is unusable", "GitSync", key)
		http.Error(w, "receiver not configured", http.StatusForbidden)
		return
	}
	check, err := newBodyCheck(r, secret, rc.now())
	if err != nil {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	buf := make([]byte, receiverBuffer)
	scan := &pushScanner{}
	if _, err := io.CopyBuffer(io.MultiWriter(check, scan), http.MaxBytesReader(w, r.Body, MaxReceiverBody), buf); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", MaxReceiverBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "failed to read the body", http.StatusBadRequest)
		return
	}
	if !check.ok() {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if check.id != "" {
		fresh, err := rc.replayGuard().Claim(ctx, key.String()+"/"+check.id, rc.now().Add(2*receiverMaxAge))
		if err != nil {
			log.Error(err, "failed to record a request id", "GitSync", key)
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		if !fresh {
			http.Error(w, "invalid signature: request id already used", http.StatusUnauthorized)
			return
		}
	}
	if isPing(r.Header) {
		_, _ = io.WriteString(w, "pong\n")
		return
	}
	if scan.fields.Ref != "" && len(scan.fields.URLs) > 0 {
		rc.route(w, r, key, scan.fields)
		return
	}
	// A call without a push payload (Sluice-signed, or a bare ref) names its GitSync.
	if !rc.allow(key) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	if err := RequestSync(ctx, rc.Client, gs, rc.now()); err != nil {
		if apierrors.IsNotFound(err) {
			http.NotFound(w, r)
			return
		}
		log.Error(err, "failed to request a sync", "GitSync", key)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	log.Info("sync requested by a push webhook", "GitSync", key)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "sync requested\n")
}

func (rc *Receiver) replayGuard() webhooks.ReplayGuard {
	if rc.Replay != nil {
		return rc.Replay
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.replay == nil {
		rc.replay = webhooks.NewReplayCache(0)
	}
	return rc.replay
}

func (rc *Receiver) secret(ctx context.Context, gs *sluicev1beta1.GitSync) ([]byte, error) {
	reader := rc.APIReader
	if reader == nil {
		reader = rc.Client
	}
	s := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: gs.Spec.Receiver.SecretRef.Name}, s); err != nil {
		return nil, err
	}
	v := s.Data[ReceiverSecretKey]
	if len(v) == 0 {
		return nil, errors.New("the receiver Secret has no key " + ReceiverSecretKey)
	}
	return v, nil
}

// allow rate-limits accepted calls per GitSync.
func (rc *Receiver) allow(key types.NamespacedName) bool {
	interval := rc.MinInterval
	if interval <= 0 {
		interval = receiverMinInterval
	}
	now := rc.now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.last == nil {
		rc.last = map[types.NamespacedName]time.Time{}
	}
	for k, t := range rc.last {
		if now.Sub(t) > time.Minute {
			delete(rc.last, k)
		}
	}
	if t, ok := rc.last[key]; ok && now.Sub(t) < interval {
		return false
	}
	rc.last[key] = now
	return true
}

// signatureStyle is the signature scheme of a request, in this order:
// GitHub, GitLab, Sluice; empty when none is present. Only the first
// present is checked.
func signatureStyle(h http.Header) string {
	switch {
	case h.Get(GitHubSignatureHeader) != "":
		return GitHubSignatureHeader
	case h.Get(GitLabTokenHeader) != "":
		return GitLabTokenHeader
	case h.Get(webhooks.SignatureHeader) != "":
		return webhooks.SignatureHeader
	}
	return ""
}

// bodyCheck verifies a signature over the body written to it.
type bodyCheck struct {
	io.Writer
	ok func() bool
	// id is the request id of a Sluice signature.
	id string
}

// newBodyCheck prepares the check of r's signature with secret; it fails
// when the headers alone already refute it. All comparisons are
// constant-time.
func newBodyCheck(r *http.Request, secret []byte, now time.Time) (bodyCheck, error) {
	switch signatureStyle(r.Header) {
	case GitHubSignatureHeader:
		hexSig, ok := strings.CutPrefix(r.Header.Get(GitHubSignatureHeader), "sha256=")
		if !ok {
			return bodyCheck{}, errors.New("not a sha256 signature")
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			return bodyCheck{}, fmt.Errorf("bad signature hex: %w", err)
		}
		m := hmac.New(sha256.New, secret)
		return bodyCheck{Writer: m, ok: func() bool { return hmac.Equal(m.Sum(nil), got) }}, nil
	case GitLabTokenHeader:
		// Compare digests so that the time does not depend on the lengths either.
		a := sha256.Sum256([]byte(r.Header.Get(GitLabTokenHeader)))
		b := sha256.Sum256(secret)
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return bodyCheck{}, errors.New("wrong token")
		}
		// The body is still read, bounded, so that 413 means the same for every style.
		return bodyCheck{Writer: io.Discard, ok: func() bool { return true }}, nil
	case webhooks.SignatureHeader:
		v, err := webhooks.NewVerifier(r.Header.Get(webhooks.SignatureHeader), secret, r.Method, r.URL.RequestURI(), now, receiverMaxAge)
		if err != nil {
			return bodyCheck{}, err
		}
		return bodyCheck{Writer: v, ok: func() bool { return v.Verify() == nil }, id: v.Signature().ID}, nil
	}
	return bodyCheck{}, errors.New("no signature")
}
