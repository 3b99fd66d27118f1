package gitsync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Signature formats, as the first line of the armored signature.
const (
	pgpArmorBegin = "-----BEGIN PGP SIGNATURE-----"
)

// trustedKeys are the public keys of a spec.verify Secret.
type trustedKeys struct {
	pgp openpgp.EntityList
	ssh []ssh.PublicKey
}

// isSSHKeysName tells whether a Secret key holds SSH public keys.
func isSSHKeysName(k string) bool {
	return strings.HasSuffix(k, ".pub") || k == "allowed_signers" || k == "authorized_keys"
}

// isPGPKeysName tells whether a Secret key holds OpenPGP public keys.
func isPGPKeysName(k string) bool {
	return strings.HasSuffix(k, ".asc") || strings.HasSuffix(k, ".gpg")
}

// parseTrustedKeys reads the public keys of a Secret. Errors name the
// Secret's key and the line, never its content. Keys of other names are
// ignored, so that one Secret can hold notes or other material.
func parseTrustedKeys(s *corev1.Secret) (*trustedKeys, error) {
	names := make([]string, 0, len(s.Data))
	for k := range s.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	keys := &trustedKeys{}
	for _, k := range names {
		data := s.Data[k]
		switch {
		case isPGPKeysName(k):
			var el openpgp.EntityList
			var err error
			// .gpg is often the binary export (gpg --export); take both.
			if bytes.Contains(data, []byte("-----BEGIN PGP")) {
				el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
			} else {
				el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
			}
			if err != nil {
				return nil, &unverifiableError{fmt.Errorf("secret %s key %s is not an OpenPGP public key (gpg --export --armor): %w", s.Name, k, err)}
			}
			keys.pgp = append(keys.pgp, el...)
		case isSSHKeysName(k):
			for i, line := range strings.Split(string(data), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				pub, err := parseSSHKeyLine(line)
				if err != nil {
					return nil, &unverifiableError{fmt.Errorf("secret %s key %s line %d is not an SSH public key (authorized_keys format, e.g. \"ssh-ed25519 AAAA... comment\"): %w", s.Name, k, i+1, err)}
				}
				keys.ssh = append(keys.ssh, pub)
			}
		}
	}
	if len(keys.pgp) == 0 && len(keys.ssh) == 0 {
		return nil, &unverifiableError{fmt.Errorf("secret %s holds no public key: put armored OpenPGP keys under keys ending in .asc, and SSH public keys under keys ending in .pub (or allowed_signers, authorized_keys)", s.Name)}
	}
	return keys, nil
}

// parseSSHKeyLine reads the key of an authorized_keys line ([options]
// keytype base64 [comment]) or of an allowed_signers line (principals
// [options] keytype base64 [comment]). The principals and options are
// ignored: the key is trusted for git's namespace, whoever it names.
func parseSSHKeyLine(line string) (ssh.PublicKey, error) {
	fields := strings.Fields(line)
	var first error
	// Skip at most the principals and the options.
	for i := 0; i < len(fields) && i < 3; i++ {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[i:], " ")))
		if err == nil {
			return pub, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// String names the trusted keys by fingerprint, as the status reports them.
func (k *trustedKeys) String() string {
	var out []string
	for _, e := range k.pgp {
		out = append(out, "OpenPGP "+pgpFingerprint(e.PrimaryKey))
	}
	for _, p := range k.ssh {
		out = append(out, "SSH "+ssh.FingerprintSHA256(p))
	}
	return strings.Join(out, ", ")
}

func pgpFingerprint(p *packet.PublicKey) string {
	return strings.ToUpper(fmt.Sprintf("%x", p.Fingerprint))
}

// unverifiableError marks failures that retrying cannot fix (stalled):
// the revision, the keys or the spec must change.
type unverifiableError struct{ err error }

func (e *unverifiableError) Error() string { return e.err.Error() }
func (e *unverifiableError) Unwrap() error { return e.err }

func isUnverifiable(err error) bool {
	var u *unverifiableError
	var s *signatureError
	return errors.As(err, &u) || errors.As(err, &s)
}

// signatureError says why an object of a revision is not trusted.
type signatureError struct {
	// object is "commit <sha>" or "tag <name>".
	object string
	// tag is true for the annotated tag of Tag and TagAndHEAD.
	tag bool
	why string
	// expected lists the trusted keys.
	expected string
}

func (e *signatureError) Error() string {
	return fmt.Sprintf("%s: %s (trusted keys: %s)", e.object, e.why, e.expected)
}

// check verifies an armored signature of payload and returns who signed,
// or why not.
func (k *trustedKeys) check(payload []byte, signature string) (string, error) {
	sig := strings.TrimSpace(signature)
	switch {
	case sig == "":
		return "", errors.New("unsigned")
	case strings.Count(sig, "-----BEGIN ") > 1:
		// As git and go-git: whose the object is cannot be told.
		return "", errors.New("several signatures; one is expected")
	case strings.HasPrefix(sig, pgpArmorBegin):
		return k.checkPGP(payload, sig)
	case strings.HasPrefix(sig, sshsigArmorBegin):
		return k.checkSSH(payload, sig)
	default:
		first, _, _ := strings.Cut(sig, "\n")
		return "", fmt.Errorf("signed in an unsupported format (%.40s); OpenPGP and SSH signatures are supported", first)
	}
}

func (k *trustedKeys) checkPGP(payload []byte, sig string) (string, error) {
	block, err := armor.Decode(strings.NewReader(sig))
	if err != nil {
		return "", fmt.Errorf("bad signature: the OpenPGP armor is malformed: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(block.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("bad signature: the OpenPGP armor is malformed: %w", err)
	}
	issuer := pgpIssuer(body)
	signer, err := openpgp.CheckDetachedSignature(k.pgp, bytes.NewReader(payload), bytes.NewReader(body), nil)
	by := "OpenPGP key " + issuer
	if signer != nil {
		by = "OpenPGP key " + pgpFingerprint(signer.PrimaryKey)
	}
	switch {
	case err == nil:
		return by, nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", fmt.Errorf("signed by an unknown key: %s", by)
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "", fmt.Errorf("signed by %s, which is revoked", by)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "", fmt.Errorf("signed by %s, which has expired", by)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "", fmt.Errorf("the signature by %s has expired", by)
	default:
		return "", fmt.Errorf("bad signature by %s: %w", by, err)
	}
}

// pgpIssuer is the key id (or fingerprint) an OpenPGP signature names, to
// tell which unknown key signed.
func pgpIssuer(body []byte) string {
	p, err := packet.NewReader(bytes.NewReader(body)).Next()
	if err != nil {
		return "(unreadable signature)"
	}
	s, ok := p.(*packet.Signature)
	switch {
	case !ok:
		return "(not a signature)"
	case len(s.IssuerFingerprint) > 0:
		return strings.ToUpper(fmt.Sprintf("%x", s.IssuerFingerprint))
	case s.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *s.IssuerKeyId)
	}
	return "(no issuer)"
}

func (k *trustedKeys) checkSSH(payload []byte, sig string) (string, error) {
	s, err := parseSSHSignature([]byte(sig))
	if err != nil {
		return "", fmt.Errorf("bad signature: %w", err)
	}
	by := "SSH key " + ssh.FingerprintSHA256(s.PublicKey)
	trusted := false
	for _, p := range k.ssh {
		if bytes.Equal(p.Marshal(), s.PublicKey.Marshal()) {
			trusted = true
			break
		}
	}
	if !trusted {
		return "", fmt.Errorf("signed by an unknown key: %s", by)
	}
	if err := s.Verify(payload, sshsigGitNamespace); err != nil {
		return "", fmt.Errorf("bad signature by %s: %w", by, err)
	}
	return by, nil
}

// verifyCheckout verifies the objects of co that mode names against keys,
// in the checkout's own repository (no network). It returns what was
// verified and by whom, e.g. "commit 1a2b… by SSH key SHA256:…".
func verifyCheckout(co Checkout, ref Ref, mode sluicev1beta1.GitSyncVerifyMode, keys *trustedKeys) ([]string, error) {
	repo, err := git.PlainOpen(co.Dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open the checkout of %s: %w", co.Revision, err)
	}
	var verified []string
	if mode == sluicev1beta1.GitSyncVerifyTag || mode == sluicev1beta1.GitSyncVerifyTagAndHEAD {
		if ref.Kind != RefTag && ref.Kind != RefSemVer {
			return nil, &unverifiableError{fmt.Errorf("spec.verify.mode %s needs spec.ref.tag or spec.ref.semver, not a %s", mode, ref.Kind)}
		}
		by, err := verifyTag(repo, co, keys)
		if err != nil {
			return nil, err
		}
		verified = append(verified, by)
	}
	if mode == sluicev1beta1.GitSyncVerifyHEAD || mode == sluicev1beta1.GitSyncVerifyTagAndHEAD {
		by, err := verifyCommit(repo, co, keys)
		if err != nil {
			return nil, err
		}
		verified = append(verified, by)
	}
	return verified, nil
}

func verifyCommit(repo *git.Repository, co Checkout, keys *trustedKeys) (string, error) {
	object := "commit " + co.SHA
	c, err := repo.CommitObject(plumbing.NewHash(co.SHA))
	if err != nil {
		return "", fmt.Errorf("failed to read %s: %w", object, err)
	}
	payload, err := unsignedPayload(c.EncodeWithoutSignature)
	if err != nil {
		return "", fmt.Errorf("failed to encode %s: %w", object, err)
	}
	by, err := keys.check(payload, c.PGPSignature)
	if err != nil {
		return "", &signatureError{object: object, why: err.Error(), expected: keys.String()}
	}
	return object + " by " + by, nil
}

func verifyTag(repo *git.Repository, co Checkout, keys *trustedKeys) (string, error) {
	name := strings.TrimSuffix(co.Revision, "@sha1:"+co.SHA)
	object := "tag " + name
	fail := func(why string) error {
		return &signatureError{object: object, tag: true, why: why, expected: keys.String()}
	}
	r, err := repo.Reference(plumbing.NewTagReferenceName(name), false)
	if err != nil {
		return "", fmt.Errorf("failed to read %s in the checkout: %w", object, err)
	}
	t, err := repo.TagObject(r.Hash())
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return "", fail("not an annotated tag (a lightweight tag carries no signature; create it with git tag -s)")
	}
	if err != nil {
		return "", fmt.Errorf("failed to read %s: %w", object, err)
	}
	if t.TargetType != plumbing.CommitObject || t.Target.String() != co.SHA {
		return "", fail(fmt.Sprintf("points to %s %s, not to commit %s", t.TargetType, t.Target, co.SHA))
	}
	payload, err := unsignedPayload(t.EncodeWithoutSignature)
	if err != nil {
		return "", fmt.Errorf("failed to encode %s: %w", object, err)
	}
	by, err := keys.check(payload, t.PGPSignature)
	if err != nil {
		return "", fail(err.Error())
	}
	return object + " by " + by, nil
}

// unsignedPayload is the object as git signs it: without its signature.
func unsignedPayload(encode func(plumbing.EncodedObject) error) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := encode(o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}
