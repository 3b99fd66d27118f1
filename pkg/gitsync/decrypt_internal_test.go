package gitsync

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestDecryptingFS_Redact: a build error that quotes a decrypted value
// (kustomize and YAML errors may quote a line) has it replaced, and keeps
// its chain for errors.Is.
func TestDecryptingFS_Redact(t *testing.T) {
	g := NewWithT(t)
	f := newDecryptingFS(filesys.MakeFsInMemory(), nil)
	f.values = append(f.values, plaintextValues("secret.yaml", []byte("stringData:\n  password: hunter2-s3cr3t\n  pin: \"12\"\n"))...)
	f.values = append(f.values, plaintextValues("app.env", []byte("API_KEY=dotenv-ap1-key\n"))...)
	f.values = append(f.values, plaintextValues("tls.key", []byte("-----BEGIN KEY-----\nbinary-key-line\n"))...)
	g.Expect(f.values).NotTo(ContainElement("12"), "values shorter than minRedacted are kept")

	cause := errors.New("cause")
	err := f.redact(fmt.Errorf("line 3: %q is not valid near dotenv-ap1-key and binary-key-line, hunter2-s3cr3t: %w", "hunter2-s3cr3t", cause))
	g.Expect(err.Error()).To(Equal(`line 3: "[redacted]" is not valid near [redacted] and [redacted], [redacted]: cause`))
	g.Expect(errors.Is(err, cause)).To(BeTrue())

	plain := errors.New("nothing secret here")
	g.Expect(f.redact(plain)).To(BeIdenticalTo(plain))
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
