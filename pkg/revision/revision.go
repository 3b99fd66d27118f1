// Package revision holds the content hashes that identify what a release
// brings: the hash of a workload's pod template and the checksum of a
// ConfigMap's or Secret's data. The canary engine compares them to tell a
// new revision, and GitSync writes them in its source annotations
// (gitsync.sluice.dev/content-hash) so the engine can tell which commit
// brought the content under release. Both import this package, so the two
// can never disagree.
package revision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TemplateHash identifies a pod template: a sha256 of its JSON form,
// leaving out the node selector Sluice adds to scale a DaemonSet to zero
// (scaling is not a new revision).
func TemplateHash(t *corev1.PodTemplateSpec) string {
	if _, ok := t.Spec.NodeSelector[sluicev1beta1.ScaleToZeroNodeSelector]; ok {
		t = t.DeepCopy()
		delete(t.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
		if len(t.Spec.NodeSelector) == 0 {
			t.Spec.NodeSelector = nil
		}
	}
	data, _ := json.Marshal(t) // a PodTemplateSpec always encodes
	return Hash(data, 16)
}

// ConfigMapChecksum hashes the data and binaryData of a ConfigMap.
func ConfigMapChecksum(cm *corev1.ConfigMap) string {
	data := make(map[string][]byte, len(cm.Data))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return checksum(data, cm.BinaryData)
}

// SecretChecksum hashes the data of a Secret (stringData is write-only: the
// API server has moved it into data by the time anyone reads it).
func SecretChecksum(s *corev1.Secret) string {
	return checksum(s.Data, nil)
}

func checksum(data, binaryData map[string][]byte) string {
	h := sha256.New()
	write := func(prefix string, m map[string][]byte) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00", prefix, k, len(m[k]))
			h.Write(m[k])
		}
	}
	write("data", data)
	write("binaryData", binaryData)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Hash is the first n hex digits of the sha256 of b.
func Hash(b []byte, n int) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:n]
}
