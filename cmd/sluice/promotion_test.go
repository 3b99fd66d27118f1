package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

// The signing key is an SSH or OpenPGP key file, with an optional
// passphrase file beside it; a bad key fails the start with an error that
// does not quote it.
func TestLoadSigning(t *testing.T) {
	g := NewWithT(t)
	s, err := loadSigning("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).To(BeNil())

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "sluice", []byte("open sesame"))
	g.Expect(err).NotTo(HaveOccurred())
	key := filepath.Join(dir, "key")
	g.Expect(os.WriteFile(key, pem.EncodeToMemory(block), 0o600)).To(Succeed())
	_, err = loadSigning(key)
	g.Expect(err).To(MatchError(ContainSubstring("passphrase")))
	g.Expect(os.WriteFile(filepath.Join(dir, "passphrase"), []byte("open sesame\n"), 0o600)).To(Succeed())
	s, err = loadSigning(key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.String()).To(ContainSubstring("SHA256:"))

	pgpDir := t.TempDir()
	e, err := openpgp.NewEntity("Sluice", "", "sluice@example.com", nil)
	g.Expect(err).NotTo(HaveOccurred())
	f, err := os.Create(filepath.Join(pgpDir, "key"))
	g.Expect(err).NotTo(HaveOccurred())
	w, err := armor.Encode(f, openpgp.PrivateKeyType, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.SerializePrivate(w, nil)).To(Succeed())
	g.Expect(w.Close()).To(Succeed())
	g.Expect(f.Close()).To(Succeed())
	s, err = loadSigning(filepath.Join(pgpDir, "key"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).NotTo(BeNil())

	bad := filepath.Join(t.TempDir(), "key")
	g.Expect(os.WriteFile(bad, []byte("not-a-key-hunter2"), 0o600)).To(Succeed())
	_, err = loadSigning(bad)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
	_, err = loadSigning(filepath.Join(t.TempDir(), "missing"))
	g.Expect(err).To(MatchError(ContainSubstring("--promotion-signing-key")))
}
