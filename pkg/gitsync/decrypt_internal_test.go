package gitsync

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestDecryptingFS_Redact: a build error that quotes a decrypted value, or
// a fragment of one (kustomize, YAML and postBuild errors may quote a line),
// has it replaced, and keeps its chain for errors.Is.
func TestDecryptingFS_Redact(t *testing.T) {
	g := NewWithT(t)
	f := newDecryptingFS(filesys.MakeFsInMemory(), &Decryptor{})
	f.dec.values = []string{"hunter2-s3cr3t", "12", "dotenv-ap1-key", "-----BEGIN KEY-----\nbinary-key-line\n", "p@ss${oops-and-more"}

	cause := errors.New("cause")
	err := f.redact(fmt.Errorf("line 3: %q is not valid near dotenv-ap1-key and binary-key-line, pin 12, hunter2-s3cr3t: %w", "hunter2-s3cr3t", cause))
	g.Expect(err.Error()).To(Equal(`line 3: "[redacted]" is not valid near [redacted] and [redacted], pin 12, [redacted]: cause`))
	g.Expect(errors.Is(err, cause)).To(BeTrue())

	// postBuild quotes the text from "${" on, abbreviated.
	err = f.redact(errors.New(`Secret/db: unterminated "${oops-and-m..." (write $${ for a literal ${)`))
	g.Expect(err.Error()).To(Equal(`Secret/db: unterminated "[redacted]..." (write $${ for a literal ${)`))

	plain := errors.New("nothing secret here")
	g.Expect(f.redact(plain)).To(BeIdenticalTo(plain))

	// A later step's sync error keeps its reason, without the values.
	se := fail(ReasonApplyFailed, false, fmt.Errorf("Secret db: invalid value %q", "hunter2-s3cr3t"))
	err = f.dec.Redact(se)
	var got *syncError
	g.Expect(errors.As(err, &got)).To(BeTrue())
	g.Expect(got.reason).To(Equal(ReasonApplyFailed))
	g.Expect(err.Error()).To(Equal(`Secret db: invalid value "[redacted]"`))
	var none *Decryptor
	g.Expect(none.Redact(plain)).To(BeIdenticalTo(plain))
}

// TestRefuseEncrypted: an object that still carries SOPS metadata after the
// build is refused.
func TestRefuseEncrypted(t *testing.T) {
	g := NewWithT(t)
	objs := []*unstructured.Unstructured{cmObj("plain", "v1")}
	g.Expect(refuseEncrypted(objs)).To(Succeed())
	o := cmObj("leak", "ENC[AES256_GCM,data:x]")
	o.Object["sops"] = map[string]any{"mac": "ENC[...]"}
	err := refuseEncrypted(append(objs, o))
	g.Expect(errors.Is(err, ErrDecryption)).To(BeTrue())
	g.Expect(err).To(MatchError(ContainSubstring("ConfigMap leak: the built object still carries SOPS metadata")))
}
