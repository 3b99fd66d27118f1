package loadtester

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// GateKind tells a confirmation gate from a rollback flag.
type GateKind string

const (
	// KindGate is the gate of /gate/check, /gate/open and /gate/close.
	KindGate GateKind = "gate"
	// KindRollback is the flag of /rollback/check, /rollback/open and /rollback/close.
	KindRollback GateKind = "rollback"
)

// GateStore keeps whether the gates of canaries are open. Gates start closed.
type GateStore interface {
	// IsOpen tells whether the gate of canary namespace/name is open.
	IsOpen(ctx context.Context, kind GateKind, namespace, name string) (bool, error)
	// Set opens or closes the gate of canary namespace/name.
	Set(ctx context.Context, kind GateKind, namespace, name string, open bool) error
}

// MemoryGates keeps gates in memory: they are lost on restart and not shared
// between replicas. Use it only without cluster access.
type MemoryGates struct {
	mu    sync.Mutex
	gates map[string]bool
}

// NewMemoryGates returns an empty in-memory gate store.
func NewMemoryGates() *MemoryGates { return &MemoryGates{gates: map[string]bool{}} }

func gateKey(kind GateKind, namespace, name string) string {
	return string(kind) + "/" + namespace + "/" + name
}

// IsOpen implements GateStore.
func (m *MemoryGates) IsOpen(_ context.Context, kind GateKind, namespace, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gates[gateKey(kind, namespace, name)], nil
}

// Set implements GateStore.
func (m *MemoryGates) Set(_ context.Context, kind GateKind, namespace, name string, open bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if open {
		m.gates[gateKey(kind, namespace, name)] = true
	} else {
		delete(m.gates, gateKey(kind, namespace, name))
	}
	return nil
}

// Labels and annotations of gate ConfigMaps.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	managedByValue   = "sluice-loadtester"
	LabelGateKind    = "sluice.dev/gate-kind"
	AnnotationCanary = "sluice.dev/canary"
)

// ConfigMapGates keeps each open gate as a ConfigMap in one namespace (the
// load tester's): the gate is open while its ConfigMap exists. State
// survives restarts and is shared by replicas. It needs get, create and
// delete on configmaps in that namespace.
type ConfigMapGates struct {
	client    kubernetes.Interface
	namespace string
}

// NewConfigMapGates stores gates as ConfigMaps in namespace.
func NewConfigMapGates(c kubernetes.Interface, namespace string) *ConfigMapGates {
	return &ConfigMapGates{client: c, namespace: namespace}
}

// ConfigMapName is the name of the ConfigMap of a gate: a hash keeps it a
// valid, bounded name whatever the canary's name.
func ConfigMapName(kind GateKind, namespace, name string) string {
	sum := sha256.Sum256([]byte(gateKey(kind, namespace, name)))
	return "sluice-" + string(kind) + "-" + hex.EncodeToString(sum[:10])
}

// IsOpen implements GateStore.
func (g *ConfigMapGates) IsOpen(ctx context.Context, kind GateKind, namespace, name string) (bool, error) {
	cm, err := g.client.CoreV1().ConfigMaps(g.namespace).Get(ctx, ConfigMapName(kind, namespace, name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read the %s of %s/%s: %w", kind, namespace, name, err)
	}
	// Guard against a hash collision or a foreign object of the same name.
	return cm.Data["namespace"] == namespace && cm.Data["name"] == name, nil
}

// Set implements GateStore.
func (g *ConfigMapGates) Set(ctx context.Context, kind GateKind, namespace, name string, open bool) error {
	cms := g.client.CoreV1().ConfigMaps(g.namespace)
	cmName := ConfigMapName(kind, namespace, name)
	if !open {
		err := cms.Delete(ctx, cmName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to close the %s of %s/%s: %w", kind, namespace, name, err)
		}
		return nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        cmName,
			Namespace:   g.namespace,
			Labels:      map[string]string{LabelManagedBy: managedByValue, LabelGateKind: string(kind)},
			Annotations: map[string]string{AnnotationCanary: namespace + "/" + name},
		},
		Data: map[string]string{"kind": string(kind), "namespace": namespace, "name": name},
	}
	_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to open the %s of %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}
