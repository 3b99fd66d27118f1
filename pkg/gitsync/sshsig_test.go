package gitsync

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

func ed25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSSHSig_RoundTrip: a signature verifies its message in its namespace,
// and nothing else.
func TestSSHSig_RoundTrip(t *testing.T) {
	g := NewWithT(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	rsaSigner, err := ssh.NewSignerFromKey(rsaKey)
	g.Expect(err).NotTo(HaveOccurred())
	for _, signer := range []ssh.Signer{ed25519Signer(t), rsaSigner} {
		msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nsigned\n")
		armored, err := signSSH(signer, msg, "git")
		g.Expect(err).NotTo(HaveOccurred())
		s, err := parseSSHSignature(armored)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.PublicKey.Marshal()).To(Equal(signer.PublicKey().Marshal()))
		g.Expect(s.Verify(msg, "git")).To(Succeed())
		g.Expect(s.Verify(append(msg, 'x'), "git")).To(MatchError(ContainSubstring("does not match the signature")))
		g.Expect(s.Verify(msg, "file")).To(MatchError(ContainSubstring(`namespace "git", not "file"`)))
	}
}

// TestSSHSig_Malformed: what is not an SSHSIG blob is refused with a reason.
func TestSSHSig_Malformed(t *testing.T) {
	good, err := signSSH(ed25519Signer(t), []byte("m"), "git")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	for _, tc := range []struct {
		name, armored, want string
	}{
		{name: "pgp armor", armored: "-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----", want: "not an armored SSH signature"},
		{name: "not base64", armored: sshsigArmorBegin + "\n!!!\n" + sshsigArmorEnd, want: "not base64"},
		{name: "no magic", armored: sshsigArmorBegin + "\nAAAA\n" + sshsigArmorEnd, want: "does not start with SSHSIG"},
		{name: "truncated", armored: strings.Join(append(lines[:3:3], sshsigArmorEnd), "\n"), want: "malformed"},
		{name: "no end", armored: strings.Join(lines[:len(lines)-1], "\n"), want: "not an armored SSH signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSSHSignature([]byte(tc.armored))
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

// TestSSHSig_Hash: only sha256 and sha512 are accepted, as ssh-keygen.
func TestSSHSig_Hash(t *testing.T) {
	g := NewWithT(t)
	armored, err := signSSH(ed25519Signer(t), []byte("m"), "git")
	g.Expect(err).NotTo(HaveOccurred())
	s, err := parseSSHSignature(armored)
	g.Expect(err).NotTo(HaveOccurred())
	s.HashAlgorithm = "sha1"
	g.Expect(s.Verify([]byte("m"), "git")).To(MatchError(ContainSubstring(`hash "sha1"`)))
	// Claiming sha256 for a sha512 signature breaks it.
	s.HashAlgorithm = "sha256"
	g.Expect(s.Verify([]byte("m"), "git")).To(MatchError(ContainSubstring("does not match the signature")))
}

// TestSSHSig_SSHKeygen checks the format against OpenSSH's own: a
// signature made by ssh-keygen -Y sign verifies here, and one made here
// verifies with ssh-keygen -Y verify.
func TestSSHSig_SSHKeygen(t *testing.T) {
	g := NewWithT(t)
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatal("this test needs ssh-keygen (Debian package openssh-client):", err)
	}
	dir := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(keygen, args...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "ssh-keygen %v: %s", args, out)
		return string(out)
	}
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		key := filepath.Join(dir, typ)
		run("", "-q", "-t", typ, "-N", "", "-C", "test@"+typ, "-f", key)
		msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\n\n" + typ + "\n")
		g.Expect(os.WriteFile(filepath.Join(dir, "msg"), msg, 0o600)).To(Succeed())
		run("", "-Y", "sign", "-f", key, "-n", "git", filepath.Join(dir, "msg"))
		armored, err := os.ReadFile(filepath.Join(dir, "msg.sig"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.Remove(filepath.Join(dir, "msg.sig"))).To(Succeed())

		s, err := parseSSHSignature(armored)
		g.Expect(err).NotTo(HaveOccurred(), typ)
		pubText, err := os.ReadFile(key + ".pub")
		g.Expect(err).NotTo(HaveOccurred())
		pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.PublicKey.Marshal()).To(Equal(pub.Marshal()), typ)
		g.Expect(s.Verify(msg, "git")).To(Succeed(), typ)
		g.Expect(s.Verify([]byte("tampered"), "git")).NotTo(Succeed(), typ)

		if typ != "ed25519" {
			continue
		}
		// The other way round: ssh-keygen verifies what signSSH made.
		raw, err := os.ReadFile(key)
		g.Expect(err).NotTo(HaveOccurred())
		signer, err := ssh.ParsePrivateKey(raw)
		g.Expect(err).NotTo(HaveOccurred())
		ours, err := signSSH(signer, msg, "git")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.WriteFile(filepath.Join(dir, "ours.sig"), ours, 0o600)).To(Succeed())
		g.Expect(os.WriteFile(filepath.Join(dir, "allowed"), []byte("test@ed25519 "+string(pubText)), 0o600)).To(Succeed())
		out := run(string(msg), "-Y", "verify", "-f", filepath.Join(dir, "allowed"), "-I", "test@ed25519", "-n", "git", "-s", filepath.Join(dir, "ours.sig"))
		g.Expect(out).To(ContainSubstring("Good"))
	}
}

// FuzzParseSSHSignature: no input makes the parser or the verifier panic.
func FuzzParseSSHSignature(f *testing.F) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	good, err := signSSH(signer, []byte("m"), "git")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(sshsigArmorBegin + "\nU1NIU0lH\n" + sshsigArmorEnd))
	f.Fuzz(func(t *testing.T, armored []byte) {
		if s, err := parseSSHSignature(armored); err == nil {
			_ = s.Verify([]byte("m"), "git")
		}
	})
}
