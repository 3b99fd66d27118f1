package gitsync

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/crypto/ssh"
)

// The signing half of the verification, for the tests of both packages
// (gitsync_test signs real commits with these).

// SignSSH makes an armored SSHSIG signature (see signSSH).
var SignSSH = signSSH

// NewPGPEntity makes an OpenPGP key pair (Ed25519: fast to make).
func NewPGPEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ArmoredPublicKey exports the public part of e as gpg --export --armor.
func ArmoredPublicKey(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PGPFingerprint is the fingerprint the status names e by.
func PGPFingerprint(e *openpgp.Entity) string { return pgpFingerprint(e.PrimaryKey) }

// signSSH makes an armored SSHSIG signature of message in namespace with
// signer, as ssh-keygen -Y sign does. Sluice only verifies: this is the
// other half, for the tests.
func signSSH(signer ssh.Signer, message []byte, namespace string) ([]byte, error) {
	h := sha512.Sum512(message)
	signed := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace     string
		Reserved      string
		HashAlgorithm string
		Hash          []byte
	}{namespace, "", "sha512", h[:]})...)
	var sig *ssh.Signature
	var err error
	if as, ok := signer.(ssh.AlgorithmSigner); ok && signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(nil, signed, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(nil, signed)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to sign: %w", err)
	}
	blob := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Version       uint32
		PublicKey     []byte
		Namespace     string
		Reserved      string
		HashAlgorithm string
		Signature     []byte
	}{sshsigVersion, signer.PublicKey().Marshal(), namespace, "", "sha512", ssh.Marshal(sig)})...)
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString(sshsigArmorBegin + "\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n" + sshsigArmorEnd + "\n")
	return []byte(b.String()), nil
}
