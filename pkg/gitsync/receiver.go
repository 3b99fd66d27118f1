package gitsync

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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
	// MaxReceiverBody bounds the body of a push webhook.
	MaxReceiverBody = 64 << 10
	// receiverMaxAge bounds the age of a Sluice signature.
	receiverMaxAge = 5 * time.Minute
	// receiverMinInterval is the least time between two accepted calls for one GitSync.
	receiverMinInterval = time.Second
)

// Receiver takes push webhooks on POST /hooks/<namespace>/<name> and
// requests a sync now of that GitSync by setting its sync-requested-at
// annotation. It answers 404 for an unknown GitSync or one without
// spec.receiver, 401 for a missing or bad signature, 413 for a body over
// 64 KiB, 429 when called too often, and 202 on success.
type Receiver struct {
	// Client reads GitSyncs and patches their annotation.
	Client client.Client
	// APIReader reads the receiver Secrets.
	APIReader client.Reader
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// MinInterval between two accepted calls for one GitSync; 1s when zero.
	MinInterval time.Duration

	mu   sync.Mutex
	last map[types.NamespacedName]time.Time
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
	if !ok || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	key := types.NamespacedName{Namespace: parts[0], Name: parts[1]}
	ctx := r.Context()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReceiverBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "failed to read the body", http.StatusBadRequest)
		return
	}

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
	if !verify(r.Header, secret, body, rc.now()) {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
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

// verify checks, in this order, a GitHub, a GitLab or a Sluice signature;
// only the style whose header is present is checked. All comparisons are
// constant-time.
func verify(h http.Header, secret, body []byte, now time.Time) bool {
	if sig := h.Get(GitHubSignatureHeader); sig != "" {
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		if !ok {
			return false
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			return false
		}
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		return hmac.Equal(m.Sum(nil), got)
	}
	if tok := h.Get(GitLabTokenHeader); tok != "" {
		// Compare digests so that the time does not depend on the lengths either.
		a := sha256.Sum256([]byte(tok))
		b := sha256.Sum256(secret)
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	if sig := h.Get(webhooks.SignatureHeader); sig != "" {
		return webhooks.Verify(sig, secret, body, now, receiverMaxAge) == nil
	}
	return false
}
