package revision_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/revision"
)

func template() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1.0"}}}}
}

// TestHashes_Golden pins the hashes: they are stored in Canary statuses
// (lastAppliedSpec, trackedConfigs) and GitSync annotations, so a change
// would start a release of every Canary and orphan every annotation. These
// are the values the engine computed before the functions moved here.
func TestHashes_Golden(t *testing.T) {
	g := NewWithT(t)
	g.Expect(revision.TemplateHash(template())).To(Equal("6ba9ad0a2abca895"))
	g.Expect(revision.ConfigMapChecksum(&corev1.ConfigMap{Data: map[string]string{"level": "info"},
		BinaryData: map[string][]byte{"blob": {0, 1, 2}}})).To(Equal("c6f334ce55182ba5"))
	g.Expect(revision.SecretChecksum(&corev1.Secret{Data: map[string][]byte{"t": []byte("s3cr3t")}})).To(Equal("66a176f1867abbd2"))
	g.Expect(revision.Hash([]byte("x"), 10)).To(HaveLen(10))
}

// TestTemplateHash_ScaleToZero: the node selector that scales a DaemonSet
// to zero is not a new template, and the input is not changed.
func TestTemplateHash_ScaleToZero(t *testing.T) {
	g := NewWithT(t)
	scaled := template()
	scaled.Spec.NodeSelector = map[string]string{sluicev1beta1.ScaleToZeroNodeSelector: "true"}
	g.Expect(revision.TemplateHash(scaled)).To(Equal(revision.TemplateHash(template())))
	g.Expect(scaled.Spec.NodeSelector).To(HaveKey(sluicev1beta1.ScaleToZeroNodeSelector))
	other := template()
	other.Spec.NodeSelector = map[string]string{"zone": "a", sluicev1beta1.ScaleToZeroNodeSelector: "true"}
	g.Expect(revision.TemplateHash(other)).NotTo(Equal(revision.TemplateHash(template())))
}

// TestChecksums tell data apart: a key, a value, data from binaryData.
func TestChecksums(t *testing.T) {
	g := NewWithT(t)
	base := revision.ConfigMapChecksum(&corev1.ConfigMap{Data: map[string]string{"a": "b"}})
	g.Expect(revision.ConfigMapChecksum(&corev1.ConfigMap{Data: map[string]string{"a": "c"}})).NotTo(Equal(base))
	g.Expect(revision.ConfigMapChecksum(&corev1.ConfigMap{Data: map[string]string{"x": "b"}})).NotTo(Equal(base))
	g.Expect(revision.ConfigMapChecksum(&corev1.ConfigMap{BinaryData: map[string][]byte{"a": []byte("b")}})).NotTo(Equal(base))
	g.Expect(revision.ConfigMapChecksum(&corev1.ConfigMap{Data: map[string]string{"a": "b"},
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"l": "v"}}})).To(Equal(base), "metadata is not content")
	g.Expect(revision.SecretChecksum(&corev1.Secret{Data: map[string][]byte{"a": []byte("b")}})).To(Equal(base),
		"a Secret and a ConfigMap with the same data hash alike (kinds are keyed apart in status)")
}
