package gitsync_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/pgp"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// The fixtures of the SOPS tests are encrypted at test time with the SOPS
// library, as `sops --encrypt` does (common.EncryptTree): no ciphertext is
// checked in.

// newAgeKey makes an age identity.
func newAgeKey(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// pgpKey is an OpenPGP key made in the test.
type pgpKey struct {
	entity *openpgp.Entity
	// armored is the private key as `gpg --export-secret-keys --armor` writes it.
	armored []byte
	// pubRing is a keyring file of the public key, for SOPS's encryption.
	pubRing string
}

func (k pgpKey) fingerprint() string {
	return strings.ToUpper(hex.EncodeToString(k.entity.PrimaryKey.Fingerprint))
}

// newPGPKey makes an Ed25519/Curve25519 OpenPGP key (quick to generate).
func newPGPKey(t *testing.T) pgpKey {
	t.Helper()
	e, err := openpgp.NewEntity("GitSync test", "", "gitsync@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var priv bytes.Buffer
	w, err := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	ring := filepath.Join(t.TempDir(), "pubring.gpg")
	if err := os.WriteFile(ring, pub.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return pgpKey{entity: e, armored: priv.Bytes(), pubRing: ring}
}

// sopsOpts are the recipients and the partial-encryption rules of a file.
type sopsOpts struct {
	age               []*age.X25519Identity
	pgp               []pgpKey
	encryptedRegex    string
	unencryptedSuffix string
}

// sopsStoreFor mirrors the sops CLI's choice of store by extension.
func sopsStoreFor(name string) sops.Store {
	switch filepath.Ext(name) {
	case ".yaml", ".yml":
		return sopsyaml.NewStore(&config.YAMLStoreConfig{})
	case ".json":
		return sopsjson.NewStore(&config.JSONStoreConfig{})
	case ".env":
		return dotenv.NewStore(&config.DotenvStoreConfig{})
	case ".ini":
		return ini.NewStore(&config.INIStoreConfig{})
	}
	return sopsjson.NewBinaryStore(&config.JSONBinaryStoreConfig{})
}

// encryptSOPS encrypts plain as `sops --encrypt` would for a file called
// name: a random data key sealed for each recipient, every value encrypted
// (except as opts say) and the MAC.
func encryptSOPS(t *testing.T, name string, plain []byte, opts sopsOpts) []byte {
	t.Helper()
	store := sopsStoreFor(name)
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	var group sops.KeyGroup
	for _, id := range opts.age {
		mk, err := sopsage.MasterKeyFromRecipient(id.Recipient().String())
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, mk)
	}
	for _, k := range opts.pgp {
		mk := pgp.NewMasterKeyFromFingerprint(k.fingerprint())
		pgp.PubRing(k.pubRing).ApplyToMasterKey(mk)
		group = append(group, mk)
	}
	for _, mk := range group {
		if err := mk.Encrypt(dataKey); err != nil {
			t.Fatalf("seal the data key for %s: %v", mk.ToString(), err)
		}
	}
	suffix := opts.unencryptedSuffix
	if suffix == "" && opts.encryptedRegex == "" {
		suffix = "_unencrypted" // the sops CLI's default
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:         []sops.KeyGroup{group},
		EncryptedRegex:    opts.encryptedRegex,
		UnencryptedSuffix: suffix,
		Version:           "3.13.3",
	}}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		t.Fatal(err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ageSecret is the data of a decryption Secret holding an age identity.
func ageSecret(id *age.X25519Identity) map[string][]byte {
	return map[string][]byte{"identity.agekey": []byte("# created: test\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")}
}

type ageIdentity = age.X25519Identity

// armorPrivate opens an armored writer for a private key.
func armorPrivate(w *bytes.Buffer) (io.WriteCloser, error) {
	return armor.Encode(w, openpgp.PrivateKeyType, nil)
}

// armorPublic armors a serialized public key.
func armorPublic(t *testing.T, pub []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pub); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
