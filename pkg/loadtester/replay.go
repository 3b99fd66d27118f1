package loadtester

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// Labels and annotations of request-id ConfigMaps.
const (
	// LabelRequestID marks the ConfigMaps of ConfigMapReplayGuard.
	LabelRequestID = "sluice.dev/request-id"
	// AnnotationExpires is when a request id may be forgotten (RFC 3339).
	AnnotationExpires = "sluice.dev/expires"
)

// ConfigMapReplayGuard remembers the ids of accepted signed requests as
// ConfigMaps in the load tester's namespace, next to the gates: creating a
// ConfigMap is atomic, so two replicas cannot both accept one id. Prune
// deletes expired ones. It needs get, list, create and delete on configmaps.
type ConfigMapReplayGuard struct {
	client    kubernetes.Interface
	namespace string
	now       func() time.Time
}

var _ webhooks.ReplayGuard = (*ConfigMapReplayGuard)(nil)

// NewConfigMapReplayGuard stores request ids as ConfigMaps in namespace.
func NewConfigMapReplayGuard(c kubernetes.Interface, namespace string) *ConfigMapReplayGuard {
	return &ConfigMapReplayGuard{client: c, namespace: namespace, now: time.Now}
}

// requestIDName is the ConfigMap name of an id: a hash keeps it a valid name.
func requestIDName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "sluice-reqid-" + hex.EncodeToString(sum[:16])
}

// Claim implements webhooks.ReplayGuard.
func (g *ConfigMapReplayGuard) Claim(ctx context.Context, id string, expires time.Time) (bool, error) {
	cms := g.client.CoreV1().ConfigMaps(g.namespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:        requestIDName(id),
		Namespace:   g.namespace,
		Labels:      map[string]string{LabelManagedBy: managedByValue, LabelRequestID: ""},
		Annotations: map[string]string{AnnotationExpires: expires.UTC().Format(time.RFC3339)},
	}}
	_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("failed to create the request-id ConfigMap: %w", err)
	}
	// Seen before. An expired record (not pruned yet) of an id used again is
	// still refused: ids are random, so a repeat is a replay in any case.
	return false, nil
}

// Prune deletes the request-id ConfigMaps that have expired.
func (g *ConfigMapReplayGuard) Prune(ctx context.Context) (int, error) {
	cms := g.client.CoreV1().ConfigMaps(g.namespace)
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: LabelRequestID})
	if err != nil {
		return 0, fmt.Errorf("failed to list request ids: %w", err)
	}
	now := g.now()
	n := 0
	for i := range list.Items {
		cm := &list.Items[i]
		exp, err := time.Parse(time.RFC3339, cm.Annotations[AnnotationExpires])
		if err == nil && now.Before(exp) {
			continue
		}
		uid := cm.UID
		err = cms.Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return n, fmt.Errorf("failed to delete expired request id %s: %w", cm.Name, err)
		}
		n++
	}
	return n, nil
}

// RunPrune prunes every interval until ctx is done; errors go to onErr.
func (g *ConfigMapReplayGuard) RunPrune(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := g.Prune(ctx); err != nil && ctx.Err() == nil {
			onErr(err)
		}
	}
}
