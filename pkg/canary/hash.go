package canary

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// templateHash identifies a pod template: a sha256 of its JSON form,
// leaving out the node selector Sluice adds to scale a DaemonSet to zero.
func templateHash(t *corev1.PodTemplateSpec) string {
	if _, ok := t.Spec.NodeSelector[sluicev1beta1.ScaleToZeroNodeSelector]; ok {
		t = t.DeepCopy()
		delete(t.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
		if len(t.Spec.NodeSelector) == 0 {
			t.Spec.NodeSelector = nil
		}
	}
	data, _ := json.Marshal(t) // a PodTemplateSpec always encodes
	return hashBytes(data, 16)
}

// revisionOf identifies a revision: the pod template hash and the checksums
// of the tracked configs.
func revisionOf(spec string, configs map[string]string) string {
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte(spec)
	for _, k := range keys {
		b = append(b, "\x00"+k+"="+configs[k]...)
	}
	return hashBytes(b, 10)
}

func hashBytes(b []byte, n int) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:n]
}
