package gitsync_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

const plainSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: hunter2-s3cr3t
  user: admin-from-sops
`

const plainJSONSecret = `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"}, "stringData": {"token": "json-t0ken-value"}}`

const plainDotenv = "DB_PASSWORD=dotenv-pa55word\nAPI_KEY=dotenv-ap1-key\n"

// plainBinary is a file for a secretGenerator's files:, with bytes that
// are not text.
var plainBinary = []byte("binary-\x00\x01\xfe\xff-tls-key-material\n")

// secretWords are the plaintext values of the fixtures above: none may
// appear in ciphertext or in any message.
var secretWords = []string{"hunter2-s3cr3t", "admin-from-sops", "json-t0ken-value", "dotenv-pa55word", "dotenv-ap1-key", "tls-key-material"}

func expectNoPlaintext(g Gomega, text string) {
	for _, w := range secretWords {
		g.Expect(text).NotTo(ContainSubstring(w))
	}
}

func yamlEqual(g Gomega, got []byte, want string) {
	var a, b any
	g.Expect(yaml.Unmarshal(got, &a)).To(Succeed())
	g.Expect(yaml.Unmarshal([]byte(want), &b)).To(Succeed())
	g.Expect(a).To(Equal(b))
}

// TestDecryptor_Decrypt decrypts every format SOPS writes with age and
// with OpenPGP keys held in memory.
func TestDecryptor_Decrypt(t *testing.T) {
	ageID := newAgeKey(t)
	pk := newPGPKey(t)
	tests := []struct {
		name  string
		file  string
		plain []byte
		opts  sopsOpts
		keys  map[string][]byte
		check func(g Gomega, out []byte)
	}{
		{name: "age YAML", file: "secret.yaml", plain: []byte(plainSecret), opts: sopsOpts{age: nil}, check: func(g Gomega, out []byte) { yamlEqual(g, out, plainSecret) }},
		{name: "OpenPGP YAML", file: "secret.yaml", plain: []byte(plainSecret), opts: sopsOpts{pgp: []pgpKey{pk}},
			keys: map[string][]byte{"gitsync.asc": pk.armored}, check: func(g Gomega, out []byte) { yamlEqual(g, out, plainSecret) }},
		{name: "age JSON", file: "api.json", plain: []byte(plainJSONSecret), check: func(g Gomega, out []byte) { yamlEqual(g, out, plainJSONSecret) }},
		{name: "OpenPGP dotenv", file: "app.env", plain: []byte(plainDotenv), opts: sopsOpts{pgp: []pgpKey{pk}},
			keys: map[string][]byte{"gitsync.asc": pk.armored}, check: func(g Gomega, out []byte) { g.Expect(string(out)).To(Equal(plainDotenv)) }},
		{name: "age INI", file: "db.ini", plain: []byte("[db]\npassword = hunter2-s3cr3t\n"),
			check: func(g Gomega, out []byte) { g.Expect(string(out)).To(ContainSubstring("password = hunter2-s3cr3t")) }},
		{name: "age binary file", file: "tls.key", plain: plainBinary, check: func(g Gomega, out []byte) { g.Expect(out).To(Equal(plainBinary)) }},
		{name: "age and OpenPGP recipients, age key only", file: "secret.yml", plain: []byte(plainSecret), opts: sopsOpts{pgp: []pgpKey{pk}, age: nil},
			check: func(g Gomega, out []byte) { yamlEqual(g, out, plainSecret) }},
		{name: "partially encrypted with encrypted_regex", file: "secret.yaml", plain: []byte(plainSecret), opts: sopsOpts{encryptedRegex: "^(data|stringData)$"},
			check: func(g Gomega, out []byte) { yamlEqual(g, out, plainSecret) }},
		{name: "partially encrypted with unencrypted_suffix", file: "secret.yaml",
			plain: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  user_unencrypted: visible\n  password: hunter2-s3cr3t\n"),
			opts:  sopsOpts{unencryptedSuffix: "_unencrypted"},
			check: func(g Gomega, out []byte) {
				g.Expect(string(out)).To(ContainSubstring("user_unencrypted: visible"))
				g.Expect(string(out)).To(ContainSubstring("password: hunter2-s3cr3t"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			opts := tt.opts
			keys := tt.keys
			if keys == nil {
				opts.age = append(opts.age, ageID)
				keys = ageSecret(ageID)
			}
			enc := encryptSOPS(t, tt.file, tt.plain, opts)
			expectNoPlaintext(g, string(enc))
			g.Expect(gitsync.IsEncrypted(tt.file, enc)).To(BeTrue())
			g.Expect(gitsync.IsEncrypted(tt.file, tt.plain)).To(BeFalse())

			d, err := gitsync.NewDecryptor("sops-keys", keys)
			g.Expect(err).NotTo(HaveOccurred())
			out, err := d.Decrypt(tt.file, enc)
			g.Expect(err).NotTo(HaveOccurred())
			tt.check(g, out)
		})
	}
}

// TestDecryptor_Refused: every failure is a DecryptionError that names
// the file and the reason, and quotes no plaintext.
func TestDecryptor_Refused(t *testing.T) {
	right, wrong := newAgeKey(t), newAgeKey(t)
	pk, otherPGP := newPGPKey(t), newPGPKey(t)
	enc := encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: []*ageIdentity{right}})
	partial := encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: []*ageIdentity{right}, encryptedRegex: "^(data|stringData)$"})
	pgpEnc := encryptSOPS(t, "app.env", []byte(plainDotenv), sopsOpts{pgp: []pgpKey{pk}})

	tests := []struct {
		name string
		file string
		data []byte
		keys map[string][]byte
		nilD bool
		want []string
	}{
		{name: "wrong age key", file: "secret.yaml", data: enc, keys: ageSecret(wrong),
			want: []string{"secret.yaml", "no key of Secret sops-keys decrypts it", "age recipient " + right.Recipient().String()}},
		{name: "wrong OpenPGP key", file: "app.env", data: pgpEnc, keys: map[string][]byte{"other.asc": otherPGP.armored},
			want: []string{"app.env", "no key of Secret sops-keys decrypts it", "PGP fingerprint " + pk.fingerprint()}},
		{name: "no key in the Secret", file: "secret.yaml", data: enc, keys: map[string][]byte{"readme.txt": []byte("x")},
			want: []string{"secret.yaml", "holds no key ending in .agekey or .asc", right.Recipient().String()}},
		{name: "no spec.decryption", file: "secret.yaml", data: enc, nilD: true,
			want: []string{"secret.yaml", "no spec.decryption", right.Recipient().String()}},
		{name: "MAC changed", file: "secret.yaml", data: regexp.MustCompile(`mac: ENC\[AES256_GCM,data:.`).ReplaceAllFunc(enc, flipLast), keys: ageSecret(right),
			want: []string{"secret.yaml", "MAC does not decrypt"}},
		{name: "value ciphertext changed", file: "secret.yaml", data: regexp.MustCompile(`password: ENC\[AES256_GCM,data:.`).ReplaceAllFunc(enc, flipLast), keys: ageSecret(right),
			want: []string{"secret.yaml", "ciphertext was changed"}},
		{name: "unencrypted value changed", file: "secret.yaml", data: bytes.Replace(partial, []byte("name: db"), []byte("name: dc"), 1), keys: ageSecret(right),
			want: []string{"secret.yaml", "MAC does not match its content"}},
		{name: "metadata unreadable", file: "secret.yaml", data: []byte(plainSecret + "sops:\n  mac: 3\n  kms: 7\n"), keys: ageSecret(right),
			want: []string{"secret.yaml", "SOPS metadata cannot be read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var d *gitsync.Decryptor
			if !tt.nilD {
				var err error
				d, err = gitsync.NewDecryptor("sops-keys", tt.keys)
				g.Expect(err).NotTo(HaveOccurred())
			}
			out, err := d.Decrypt(tt.file, tt.data)
			g.Expect(err).To(HaveOccurred(), "decrypted: %s", out)
			g.Expect(errors.Is(err, gitsync.ErrDecryption)).To(BeTrue())
			var de *gitsync.DecryptionError
			g.Expect(errors.As(err, &de)).To(BeTrue())
			g.Expect(de.File).To(Equal(tt.file))
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
			expectNoPlaintext(g, err.Error())
		})
	}
}

// flipLast changes the last byte of a match: base64 ciphertext stays
// well-formed but no longer authenticates.
func flipLast(b []byte) []byte {
	out := bytes.Clone(b)
	if out[len(out)-1] == 'A' {
		out[len(out)-1] = 'B'
	} else {
		out[len(out)-1] = 'A'
	}
	return out
}

// TestDecryptor_PlainFiles: files without SOPS metadata pass unchanged,
// also without spec.decryption, including text that mentions "sops".
func TestDecryptor_PlainFiles(t *testing.T) {
	g := NewWithT(t)
	var d *gitsync.Decryptor
	for name, data := range map[string]string{
		"secret.yaml": plainSecret,
		"nested.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  sops: |\n    mac: 1\n",
		"nested.json": `{"kind": "ConfigMap", "data": {"sops": {"mac": "x"}}}`,
		"README.md":   "Encrypted files have a \"sops\": {\"mac\": ...} object.\n",
		"notes.txt":   `{"sops": {"mac": "not json"`,
		"app.env":     plainDotenv,
	} {
		out, err := d.Decrypt(name, []byte(data))
		g.Expect(err).NotTo(HaveOccurred(), name)
		g.Expect(string(out)).To(Equal(data), name)
	}
}

// TestNewDecryptor_BadKeys: a key that cannot be used is named, its value
// is not quoted.
func TestNewDecryptor_BadKeys(t *testing.T) {
	pk := newPGPKey(t)
	var pub bytes.Buffer
	g := NewWithT(t)
	g.Expect(pk.entity.Serialize(&pub)).To(Succeed())
	protected := newPGPKey(t)
	g.Expect(protected.entity.PrivateKey.Encrypt([]byte("passphrase"))).To(Succeed())
	for _, sk := range protected.entity.Subkeys {
		g.Expect(sk.PrivateKey.Encrypt([]byte("passphrase"))).To(Succeed())
	}
	var protectedArmored bytes.Buffer
	w, err := armorPrivate(&protectedArmored)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(protected.entity.SerializePrivateWithoutSigning(w, nil)).To(Succeed())
	g.Expect(w.Close()).To(Succeed())

	tests := []struct {
		name string
		keys map[string][]byte
		want string
	}{
		{name: "not an age key", keys: map[string][]byte{"x.agekey": []byte("AGE-SECRET-KEY-1NOTAKEYhunter2-s3cr3t\n")}, want: "key x.agekey of Secret k does not hold age identities"},
		{name: "not an OpenPGP key", keys: map[string][]byte{"x.asc": []byte("hunter2-s3cr3t")}, want: "key x.asc of Secret k is not an armored OpenPGP key"},
		{name: "public OpenPGP key", keys: map[string][]byte{"x.asc": armorPublic(t, pub.Bytes())}, want: "holds a public OpenPGP key"},
		{name: "OpenPGP key with a passphrase", keys: map[string][]byte{"x.asc": protectedArmored.Bytes()}, want: "protected by a passphrase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := gitsync.NewDecryptor("k", tt.keys)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			expectNoPlaintext(g, err.Error())
		})
	}
}

// writeTree writes files under root.
func writeTree(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBuild_Decryption builds a kustomization whose resources and
// secretGenerator files are SOPS-encrypted.
func TestBuild_Decryption(t *testing.T) {
	g := NewWithT(t)
	id := newAgeKey(t)
	pk := newPGPKey(t)
	opts := sopsOpts{age: []*ageIdentity{id}}
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{
		"app/kustomization.yaml": []byte(`resources: [secret.yaml, api.json]
secretGenerator:
  - name: env
    envs: [app.env]
  - name: tls
    files: [tls.key, renamed=token.txt]
`),
		"app/secret.yaml": encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: opts.age, encryptedRegex: "^(data|stringData)$"}),
		"app/api.json":    encryptSOPS(t, "api.json", []byte(plainJSONSecret), sopsOpts{pgp: []pgpKey{pk}}),
		"app/app.env":     encryptSOPS(t, "app.env", []byte(plainDotenv), opts),
		"app/tls.key":     encryptSOPS(t, "tls.key", plainBinary, opts),
		"app/token.txt":   []byte("plain-token\n"),
		// Another path's secret, for a key this GitSync lacks: not read, not decrypted.
		"other/secret.yaml":      encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: []*ageIdentity{newAgeKey(t)}}),
		"cm/kustomization.yaml":  []byte("configMapGenerator:\n  - name: leak\n    envs: [app.env]\n"),
		"cm/app.env":             encryptSOPS(t, "app.env", []byte(plainDotenv), opts),
		"enc/kustomization.yaml": encryptSOPS(t, "kustomization.yaml", []byte("resources: [https://example.com/remote.yaml]\n"), opts),
	})
	keys := ageSecret(id)
	keys["ops.asc"] = pk.armored
	d, err := gitsync.NewDecryptor("sops-keys", keys)
	g.Expect(err).NotTo(HaveOccurred())

	objs, err := gitsync.Build(root, "app", gitsync.WithDecryptor(d))
	g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]map[string]any{}
	for _, o := range objs {
		g.Expect(o.Object).NotTo(HaveKey("sops"))
		byName[o.GetName()] = o.Object
	}
	g.Expect(byName["db"]["stringData"]).To(HaveKeyWithValue("password", "hunter2-s3cr3t"))
	g.Expect(byName["api"]["stringData"]).To(HaveKeyWithValue("token", "json-t0ken-value"))
	var env, tls map[string]any
	for n, o := range byName {
		switch {
		case strings.HasPrefix(n, "env-"):
			env = o["data"].(map[string]any)
		case strings.HasPrefix(n, "tls-"):
			tls = o["data"].(map[string]any)
		}
	}
	g.Expect(env).To(HaveKeyWithValue("DB_PASSWORD", base64.StdEncoding.EncodeToString([]byte("dotenv-pa55word"))))
	g.Expect(tls).To(HaveKeyWithValue("tls.key", base64.StdEncoding.EncodeToString(plainBinary)))
	g.Expect(tls).To(HaveKeyWithValue("renamed", base64.StdEncoding.EncodeToString([]byte("plain-token\n"))))

	_, err = gitsync.Build(root, "app")
	g.Expect(errors.Is(err, gitsync.ErrDecryption)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError(ContainSubstring("app/secret.yaml")))
	g.Expect(err).To(MatchError(ContainSubstring("no spec.decryption")))

	_, err = gitsync.Build(root, "cm", gitsync.WithDecryptor(d))
	g.Expect(errors.Is(err, gitsync.ErrDecryption)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError(ContainSubstring("cm/app.env")))
	g.Expect(err).To(MatchError(ContainSubstring("configMapGenerator")))
	expectNoPlaintext(g, err.Error())

	// An encrypted kustomization would hide a remote base from the checks.
	_, err = gitsync.Build(root, "enc", gitsync.WithDecryptor(d))
	g.Expect(errors.Is(err, gitsync.ErrDecryption)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError(ContainSubstring("enc/kustomization.yaml: a kustomization cannot be SOPS-encrypted")))
}
