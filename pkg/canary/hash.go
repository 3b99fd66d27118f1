package canary

import (
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-cd/sluice/pkg/revision"
)

// templateHash identifies a pod template (see revision.TemplateHash, which
// GitSync's content-hash annotation uses too).
func templateHash(t *corev1.PodTemplateSpec) string { return revision.TemplateHash(t) }

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

func hashBytes(b []byte, n int) string { return revision.Hash(b, n) }
