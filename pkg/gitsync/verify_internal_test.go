package gitsync

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func keysSecret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys"}, Data: data}
}

func authorizedKey(s ssh.Signer, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " " + comment
}

// TestParseTrustedKeys reads OpenPGP keys (armored, binary) and SSH keys
// (.pub, allowed_signers, authorized_keys with options), and names the
// Secret's key and line of what it cannot read.
func TestParseTrustedKeys(t *testing.T) {
	g := NewWithT(t)
	alice, bob := NewPGPEntity(t, "alice"), NewPGPEntity(t, "bob")
	var binary bytes.Buffer
	g.Expect(bob.Serialize(&binary)).To(Succeed())
	s1, s2, s3 := ed25519Signer(t), ed25519Signer(t), ed25519Signer(t)

	keys, err := parseTrustedKeys(keysSecret(map[string][]byte{
		"alice.asc":       ArmoredPublicKey(t, alice),
		"bob.gpg":         binary.Bytes(),
		"ci.pub":          []byte(authorizedKey(s1, "ci@example.com") + "\n"),
		"allowed_signers": []byte("# the release team\nrelease@example.com,ops@example.com namespaces=\"git\" " + authorizedKey(s2, "") + "\n\n"),
		"authorized_keys": []byte(`no-pty,command="true" ` + authorizedKey(s3, "x")),
		"README":          []byte("not a key, ignored"),
	}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keys.pgp).To(HaveLen(2))
	g.Expect(keys.ssh).To(HaveLen(3))
	g.Expect(keys.String()).To(ContainSubstring("OpenPGP " + PGPFingerprint(alice)))
	g.Expect(keys.String()).To(ContainSubstring("SSH " + ssh.FingerprintSHA256(s2.PublicKey())))

	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{name: "no keys", data: map[string][]byte{"identity": []byte("x")}, want: "secret keys holds no public key"},
		{name: "bad armor", data: map[string][]byte{"a.asc": []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n-----END PGP PUBLIC KEY BLOCK-----\n")}, want: "secret keys key a.asc is not an OpenPGP public key"},
		{name: "bad ssh line", data: map[string][]byte{"ci.pub": []byte(authorizedKey(s1, "") + "\nssh-ed25519 AAAAnotbase64")}, want: "secret keys key ci.pub line 2 is not an SSH public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTrustedKeys(keysSecret(tc.data))
			g := NewWithT(t)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(isUnverifiable(err)).To(BeTrue())
		})
	}
}

func pgpSign(t *testing.T, e *openpgp.Entity, payload []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, e, bytes.NewReader(payload), nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sshSign(t *testing.T, s ssh.Signer, payload []byte, namespace string) string {
	t.Helper()
	sig, err := signSSH(s, payload, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return string(sig)
}

// TestTrustedKeys_Check: each way a signature can fail says why, and names
// the key that signed.
func TestTrustedKeys_Check(t *testing.T) {
	trusted, unknown, revoked := NewPGPEntity(t, "trusted"), NewPGPEntity(t, "unknown"), NewPGPEntity(t, "revoked")
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\n\nm\n")
	// The key signed, then was revoked (a key is revoked once it leaked,
	// and what it signed is no longer trusted).
	signedByRevoked := pgpSign(t, revoked, payload)
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	// A key made two hours ago that lived an hour, and signed then.
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := openpgp.NewEntity("expired", "test", "expired@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: past, KeyLifetimeSecs: 3600})
	if err != nil {
		t.Fatal(err)
	}
	var signedByExpired bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&signedByExpired, expired, bytes.NewReader(payload), &packet.Config{Time: past}); err != nil {
		t.Fatal(err)
	}
	trustedSSH, unknownSSH := ed25519Signer(t), ed25519Signer(t)
	keys, err := parseTrustedKeys(keysSecret(map[string][]byte{
		"trusted.asc": ArmoredPublicKey(t, trusted),
		"revoked.asc": ArmoredPublicKey(t, revoked),
		"expired.asc": ArmoredPublicKey(t, expired),
		"ci.pub":      []byte(authorizedKey(trustedSSH, "ci")),
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		payload   []byte
		signature string
		want      string
		wantErr   string
	}{
		{name: "OpenPGP trusted", signature: pgpSign(t, trusted, payload), want: "OpenPGP key " + PGPFingerprint(trusted)},
		{name: "SSH trusted", signature: sshSign(t, trustedSSH, payload, "git"), want: "SSH key " + ssh.FingerprintSHA256(trustedSSH.PublicKey())},
		{name: "unsigned", signature: "", wantErr: "unsigned"},
		{name: "OpenPGP unknown key", signature: pgpSign(t, unknown, payload), wantErr: "signed by an unknown key: OpenPGP key " + PGPFingerprint(unknown)},
		{name: "OpenPGP revoked key", signature: signedByRevoked, wantErr: "signed by OpenPGP key " + PGPFingerprint(revoked) + ", which is revoked"},
		{name: "OpenPGP expired key", signature: signedByExpired.String(), wantErr: "signed by OpenPGP key " + PGPFingerprint(expired) + ", which has expired"},
		{name: "OpenPGP tampered", payload: append(bytes.Clone(payload), 'x'), signature: pgpSign(t, trusted, payload), wantErr: "bad signature by OpenPGP key " + PGPFingerprint(trusted)},
		{name: "SSH unknown key", signature: sshSign(t, unknownSSH, payload, "git"), wantErr: "signed by an unknown key: SSH key " + ssh.FingerprintSHA256(unknownSSH.PublicKey())},
		{name: "SSH tampered", payload: append(bytes.Clone(payload), 'x'), signature: sshSign(t, trustedSSH, payload, "git"), wantErr: "bad signature by SSH key " + ssh.FingerprintSHA256(trustedSSH.PublicKey())},
		{name: "SSH other namespace", signature: sshSign(t, trustedSSH, payload, "file"), wantErr: `namespace "file", not "git"`},
		{name: "two signatures", signature: pgpSign(t, trusted, payload) + sshSign(t, trustedSSH, payload, "git"), wantErr: "several signatures"},
		{name: "X.509", signature: "-----BEGIN SIGNED MESSAGE-----\nMIAG\n-----END SIGNED MESSAGE-----", wantErr: "unsupported format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := tc.payload
			if p == nil {
				p = payload
			}
			by, err := keys.check(p, tc.signature)
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(by).To(Equal(tc.want))
		})
	}
}
