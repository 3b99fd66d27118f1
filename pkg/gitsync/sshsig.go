package gitsync

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The SSH signatures git makes with gpg.format=ssh are OpenSSH "SSHSIG"
// blobs (ssh-keygen -Y sign), armored, in the gpgsig header of a commit or
// at the end of a tag's message. Their format is OpenSSH's PROTOCOL.sshsig:
//
//	blob:        "SSHSIG" uint32(1) string(publickey) string(namespace)
//	             string(reserved) string(hash_algorithm) string(signature)
//	signed data: "SSHSIG" string(namespace) string(reserved)
//	             string(hash_algorithm) string(H(message))
//
// where signature is an SSH signature (string format, string blob) of the
// signed data by the public key. x/crypto/ssh has the keys and signatures
// but not this envelope, which is small enough to keep here.
const (
	sshsigArmorBegin = "-----BEGIN SSH SIGNATURE-----"
	sshsigArmorEnd   = "-----END SSH SIGNATURE-----"
	sshsigMagic      = "SSHSIG"
	sshsigVersion    = 1
	// sshsigGitNamespace is the namespace git signs commits and tags in.
	sshsigGitNamespace = "git"
)

// sshSignature is a parsed SSHSIG blob.
type sshSignature struct {
	PublicKey     ssh.PublicKey
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Signature     *ssh.Signature
}

// parseSSHSignature parses an armored SSHSIG blob.
func parseSSHSignature(armored []byte) (*sshSignature, error) {
	text := strings.TrimSpace(string(armored))
	if !strings.HasPrefix(text, sshsigArmorBegin) || !strings.HasSuffix(text, sshsigArmorEnd) {
		return nil, errors.New("not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)")
	}
	body := strings.TrimSuffix(strings.TrimPrefix(text, sshsigArmorBegin), sshsigArmorEnd)
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return nil, fmt.Errorf("the SSH signature is not base64: %w", err)
	}
	if !bytes.HasPrefix(raw, []byte(sshsigMagic)) {
		return nil, errors.New("the SSH signature does not start with SSHSIG")
	}
	var blob struct {
		Version       uint32
		PublicKey     []byte
		Namespace     string
		Reserved      string
		HashAlgorithm string
		Signature     []byte
	}
	if err := ssh.Unmarshal(raw[len(sshsigMagic):], &blob); err != nil {
		return nil, fmt.Errorf("the SSH signature is malformed: %w", err)
	}
	if blob.Version != sshsigVersion {
		return nil, fmt.Errorf("the SSH signature has version %d; only version %d is known", blob.Version, sshsigVersion)
	}
	pub, err := ssh.ParsePublicKey(blob.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the public key of the SSH signature is malformed: %w", err)
	}
	// An SSH signature on the wire: string(format) string(blob), then, for
	// security keys (sk-*), the flags and counter that x/crypto/ssh reads
	// from Rest.
	var sig struct {
		Format string
		Blob   []byte
		Rest   []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(blob.Signature, &sig); err != nil {
		return nil, fmt.Errorf("the signature of the SSH signature is malformed: %w", err)
	}
	return &sshSignature{
		PublicKey:     pub,
		Namespace:     blob.Namespace,
		Reserved:      blob.Reserved,
		HashAlgorithm: blob.HashAlgorithm,
		Signature:     &ssh.Signature{Format: sig.Format, Blob: sig.Blob, Rest: sig.Rest},
	}, nil
}

// Verify checks that s signs message in namespace. The caller decides
// whether s.PublicKey is trusted.
func (s *sshSignature) Verify(message []byte, namespace string) error {
	if s.Namespace != namespace {
		return fmt.Errorf("the SSH signature is for namespace %q, not %q", s.Namespace, namespace)
	}
	var digest []byte
	switch s.HashAlgorithm {
	case "sha256":
		h := sha256.Sum256(message)
		digest = h[:]
	case "sha512":
		h := sha512.Sum512(message)
		digest = h[:]
	default:
		return fmt.Errorf("the SSH signature uses hash %q; only sha256 and sha512 are accepted", s.HashAlgorithm)
	}
	// ssh-keygen refuses SHA-1 RSA signatures in SSHSIG, and so does this.
	if s.Signature.Format == ssh.KeyAlgoRSA {
		return errors.New("the SSH signature is an ssh-rsa (SHA-1) signature; rsa-sha2-256 or rsa-sha2-512 is needed")
	}
	signed := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace     string
		Reserved      string
		HashAlgorithm string
		Hash          []byte
	}{s.Namespace, s.Reserved, s.HashAlgorithm, digest})...)
	if err := s.PublicKey.Verify(signed, s.Signature); err != nil {
		return fmt.Errorf("the signed data does not match the signature: %w", err)
	}
	return nil
}
