package gitwrite

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/crypto/ssh"
)

// Signing signs the commits a Writer makes, with an OpenPGP key or an SSH
// key, in the forms git itself writes (gpg.format openpgp or ssh), so that
// GitSync's spec.verify and git verify-commit accept them.
type Signing struct {
	pgp *openpgp.Entity
	ssh ssh.Signer
}

// NewOpenPGPSigning reads an armored OpenPGP private key (gpg
// --export-secret-keys --armor), decrypting it with passphrase when it is
// protected. Errors never quote the key.
func NewOpenPGPSigning(armoredKey, passphrase []byte) (*Signing, error) {
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey))
	if err != nil {
		return nil, fmt.Errorf("the signing key is not an armored OpenPGP key: %w", err)
	}
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			if len(passphrase) == 0 {
				return nil, errors.New("the OpenPGP signing key is protected by a passphrase, and none is given")
			}
			if err := e.DecryptPrivateKeys(passphrase); err != nil {
				return nil, fmt.Errorf("failed to decrypt the OpenPGP signing key: %w", err)
			}
		}
		return &Signing{pgp: e}, nil
	}
	return nil, errors.New("the signing key holds no OpenPGP private key (export it with gpg --export-secret-keys --armor)")
}

// NewSSHSigning reads an SSH private key (OpenSSH or PEM format),
// decrypting it with passphrase when it is protected. Errors never quote
// the key.
func NewSSHSigning(privateKey, passphrase []byte) (*Signing, error) {
	var s ssh.Signer
	var err error
	if len(passphrase) > 0 {
		s, err = ssh.ParsePrivateKeyWithPassphrase(privateKey, passphrase)
	} else {
		s, err = ssh.ParsePrivateKey(privateKey)
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, errors.New("the SSH signing key is protected by a passphrase, and none is given")
	}
	if err != nil {
		return nil, fmt.Errorf("the signing key is not an SSH private key: %w", err)
	}
	return &Signing{ssh: s}, nil
}

// String names the key by fingerprint, for logs.
func (s *Signing) String() string {
	switch {
	case s == nil:
		return "unsigned"
	case s.pgp != nil:
		return fmt.Sprintf("OpenPGP key %X", s.pgp.PrimaryKey.Fingerprint)
	default:
		return "SSH key " + ssh.FingerprintSHA256(s.ssh.PublicKey())
	}
}

// SSHSIG (OpenSSH's PROTOCOL.sshsig), as git -c gpg.format=ssh writes it.
const (
	sshsigArmorBegin = "-----BEGIN SSH SIGNATURE-----"
	sshsigArmorEnd   = "-----END SSH SIGNATURE-----"
	sshsigMagic      = "SSHSIG"
	sshsigVersion    = 1
	// sshsigNamespace is the namespace git signs commits in.
	sshsigNamespace = "git"
)

// sshCommitSigner is a go-git Signer making SSHSIG signatures.
type sshCommitSigner struct{ ssh.Signer }

// Sign signs the commit without its signature, in namespace git.
func (s sshCommitSigner) Sign(message io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(message, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read the commit to sign: %w", err)
	}
	return sshsign(s.Signer, data, sshsigNamespace)
}

// sshsign makes an armored SSHSIG signature of message, as ssh-keygen -Y
// sign -n namespace does (SHA-512; RSA keys sign with rsa-sha2-512, as
// OpenSSH requires).
func sshsign(signer ssh.Signer, message []byte, namespace string) ([]byte, error) {
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
		return nil, fmt.Errorf("failed to sign the commit: %w", err)
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
