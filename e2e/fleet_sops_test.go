//go:build e2e

package e2e

import (
	"crypto/rand"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	. "github.com/onsi/gomega"
)

// ageKey is the fleet's age key: the identity goes into each cluster's
// decryption Secret, the recipient encrypts files in Git.
type ageKey struct {
	identity, recipient string
}

func newAgeIdentity(g Gomega) ageKey {
	id, err := age.GenerateX25519Identity()
	g.Expect(err).NotTo(HaveOccurred())
	return ageKey{identity: id.String(), recipient: id.Recipient().String()}
}

// sopsEncryptYAML encrypts a Kubernetes manifest as
// `sops --encrypt --age <recipient> --encrypted-regex '^(data|stringData)$'`
// does: only the values of data and stringData, the rest readable in Git.
func sopsEncryptYAML(g Gomega, plain, recipient string) string {
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile([]byte(plain))
	g.Expect(err).NotTo(HaveOccurred())
	dataKey := make([]byte, 32)
	_, err = rand.Read(dataKey)
	g.Expect(err).NotTo(HaveOccurred())
	mk, err := sopsage.MasterKeyFromRecipient(recipient)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mk.Encrypt(dataKey)).To(Succeed())
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:      []sops.KeyGroup{{mk}},
		EncryptedRegex: "^(data|stringData)$",
		Version:        "3.13.3",
	}}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	g.Expect(err).NotTo(HaveOccurred())
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	g.Expect(err).NotTo(HaveOccurred())
	out, err := store.EmitEncryptedFile(tree)
	g.Expect(err).NotTo(HaveOccurred())
	return string(out)
}
