package gitsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	agearmor "filippo.io/age/armor"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/logging"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

// Suffixes of the keys of a decryption Secret, as in Flux.
const (
	AgeKeySuffix = ".agekey"
	PGPKeySuffix = ".asc"
)

// ErrDecryption is matched (errors.Is) by every DecryptionError.
var ErrDecryption = errors.New("decryption failed")

// DecryptionError is a file that could not be decrypted. Its message names
// the file and the class of the failure only: the errors of SOPS and of
// the ciphers are dropped because they may quote the file's content.
type DecryptionError struct {
	// File is the path of the file in the checkout.
	File string
	// Reason says why, without content.
	Reason string
}

func (e *DecryptionError) Error() string {
	return fmt.Sprintf("cannot decrypt %s: %s", e.File, e.Reason)
}

// Is makes errors.Is(err, ErrDecryption) true.
func (e *DecryptionError) Is(target error) bool { return target == ErrDecryption }

// Decryptor decrypts SOPS files with the age identities and OpenPGP
// private keys of one Secret, held in memory: SOPS's own key loading is
// bypassed because it reads SOPS_AGE_KEY_FILE, ~/.config/sops and
// GNUPGHOME of the controller's pod, or runs gpg.
type Decryptor struct {
	// secret names the Secret of the keys, for messages.
	secret string
	age    []age.Identity
	pgp    openpgp.EntityList
	// values are the strings decrypted by the build, to redact them from
	// the messages of later errors.
	values []string
}

// NewDecryptor reads the keys of a decryption Secret: keys ending in
// .agekey hold age identities, keys ending in .asc armored OpenPGP private
// keys; other keys are ignored. A key that does not parse is an error that
// names it, never its value.
func NewDecryptor(secretName string, data map[string][]byte) (*Decryptor, error) {
	quietSOPS.Do(func() { logging.SetLevel(logrus.ErrorLevel) })
	d := &Decryptor{secret: secretName}
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := data[k]
		switch {
		case strings.HasSuffix(k, AgeKeySuffix):
			ids, err := age.ParseIdentities(bytes.NewReader(v))
			if err != nil {
				// age's message may quote the line: leave it out.
				return nil, fmt.Errorf("key %s of Secret %s does not hold age identities (AGE-SECRET-KEY-1... lines)", k, secretName)
			}
			d.age = append(d.age, ids...)
		case strings.HasSuffix(k, PGPKeySuffix):
			ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(v))
			if err != nil {
				return nil, fmt.Errorf("key %s of Secret %s is not an armored OpenPGP key", k, secretName)
			}
			for _, e := range ring {
				if e.PrivateKey == nil {
					return nil, fmt.Errorf("key %s of Secret %s holds a public OpenPGP key: export the private key (gpg --export-secret-keys --armor)", k, secretName)
				}
				if e.PrivateKey.Encrypted {
					return nil, fmt.Errorf("key %s of Secret %s is protected by a passphrase: export it without one", k, secretName)
				}
			}
			d.pgp = append(d.pgp, ring...)
		}
	}
	return d, nil
}

// quietSOPS turns SOPS's own loggers (logrus, on stderr) down to errors:
// they report each key tried and each comment that did not decrypt,
// outside the controller's structured log.
var quietSOPS sync.Once

// storeFor picks the SOPS store of a file by its extension, as the sops
// CLI does, and tells whether the file carries SOPS metadata. Files that
// are not YAML, JSON, dotenv or INI are SOPS "binary" files: a JSON object
// whose "data" holds the whole file.
func storeFor(name string, data []byte) (sopsStore, bool) {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return sopsyaml.NewStore(&config.YAMLStoreConfig{}), yamlMarker.Match(data)
	case ".json":
		return sopsjson.NewStore(&config.JSONStoreConfig{}), jsonMarker.Match(data)
	case ".env":
		return dotenv.NewStore(&config.DotenvStoreConfig{}), dotenvMarker.Match(data)
	case ".ini":
		return ini.NewStore(&config.INIStoreConfig{}), iniMarker.Match(data)
	}
	// Only a whole JSON object can be a binary SOPS file: any other text
	// (a README quoting "sops": {...}) stays as it is.
	s := sopsjson.NewBinaryStore(&config.JSONBinaryStoreConfig{})
	t := bytes.TrimSpace(data)
	return s, len(t) > 0 && t[0] == '{' && jsonMarker.Match(t) && json.Valid(t)
}

// sopsStore is the part of a SOPS store the decryption uses.
type sopsStore interface {
	LoadEncryptedFile(in []byte) (sops.Tree, error)
	EmitPlainFile(in sops.TreeBranches) ([]byte, error)
}

// The top-level metadata SOPS writes in each format: a quick filter
// before a file is parsed, and the test of "is this file encrypted".
var (
	yamlMarker   = regexp.MustCompile(`(?m)^sops:`)
	jsonMarker   = regexp.MustCompile(`"sops"\s*:\s*\{`)
	dotenvMarker = regexp.MustCompile(`(?m)^sops_mac=`)
	iniMarker    = regexp.MustCompile(`(?m)^\[sops\]`)
)

// IsEncrypted tells whether a file of the checkout carries SOPS metadata.
func IsEncrypted(name string, data []byte) bool {
	_, enc := storeFor(name, data)
	return enc
}

// Decrypt returns the plaintext of a SOPS file, verified against its MAC,
// in the file's own format; a file without SOPS metadata is returned as
// it is. A nil Decryptor (no spec.decryption) refuses encrypted files.
func (d *Decryptor) Decrypt(name string, data []byte) ([]byte, error) {
	store, enc := storeFor(name, data)
	if !enc {
		return data, nil
	}
	tree, err := store.LoadEncryptedFile(data)
	if errors.Is(err, sops.MetadataNotFound) {
		// The marker was a false positive (a nested "sops" key).
		return data, nil
	}
	if err != nil {
		return nil, &DecryptionError{File: name, Reason: "its SOPS metadata cannot be read"}
	}
	if d == nil {
		return nil, &DecryptionError{File: name, Reason: "it is SOPS-encrypted but the GitSync has no spec.decryption: add spec.decryption with a Secret of its keys (it was encrypted for " + recipients(tree.Metadata) + ")"}
	}
	if len(d.age) == 0 && len(d.pgp) == 0 {
		return nil, &DecryptionError{File: name, Reason: fmt.Sprintf("Secret %s holds no key ending in %s or %s (the file was encrypted for %s)", d.secret, AgeKeySuffix, PGPKeySuffix, recipients(tree.Metadata))}
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{memKeyService{d}}, nil)
	if err != nil {
		return nil, &DecryptionError{File: name, Reason: fmt.Sprintf("no key of Secret %s decrypts it: it was encrypted for %s", d.secret, recipients(tree.Metadata))}
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, &DecryptionError{File: name, Reason: "a value does not decrypt with the file's data key: the ciphertext was changed after encryption"}
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, &DecryptionError{File: name, Reason: "its MAC does not decrypt: the sops.mac or sops.lastmodified metadata was changed"}
	}
	if s, ok := stored.(string); !ok || s != mac {
		return nil, &DecryptionError{File: name, Reason: "its MAC does not match its content: the file was changed after encryption"}
	}
	out, err := store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, &DecryptionError{File: name, Reason: "its plaintext cannot be written back in its format"}
	}
	// The same file loaded again is still encrypted: walking both trees
	// side by side finds the values that were encrypted (not the plain
	// kind or name of a partly encrypted file), to redact them later.
	if enc, err := store.LoadEncryptedFile(data); err == nil {
		collectEncrypted(enc.Branches, tree.Branches, &d.values)
	}
	return out, nil
}

// collectEncrypted appends to out the plaintext of every value that is
// encrypted ("ENC[...]") in enc, from the decrypted tree plain of the same
// shape.
func collectEncrypted(enc, plain any, out *[]string) {
	switch e := enc.(type) {
	case sops.TreeBranches:
		if p, ok := plain.(sops.TreeBranches); ok && len(p) == len(e) {
			for i := range e {
				collectEncrypted(e[i], p[i], out)
			}
		}
	case sops.TreeBranch:
		if p, ok := plain.(sops.TreeBranch); ok && len(p) == len(e) {
			for i := range e {
				collectEncrypted(e[i].Value, p[i].Value, out)
			}
		}
	case []any:
		if p, ok := plain.([]any); ok && len(p) == len(e) {
			for i := range e {
				collectEncrypted(e[i], p[i], out)
			}
		}
	case string:
		if !strings.HasPrefix(e, "ENC[") {
			return
		}
		switch p := plain.(type) {
		case string:
			*out = append(*out, p)
		case sops.Comment:
		default:
			*out = append(*out, fmt.Sprint(p))
		}
	}
}

// recipients lists the keys a file was encrypted for: age recipients and
// OpenPGP fingerprints, or the kind of a key this controller cannot use
// (a cloud KMS key is named by type only).
func recipients(m sops.Metadata) string {
	var out []string
	for _, g := range m.KeyGroups {
		for _, mk := range g {
			k := keyservice.KeyFromMasterKey(mk)
			switch t := k.KeyType.(type) {
			case *keyservice.Key_AgeKey:
				out = append(out, "age recipient "+t.AgeKey.Recipient)
			case *keyservice.Key_PgpKey:
				out = append(out, "PGP fingerprint "+t.PgpKey.Fingerprint)
			default:
				out = append(out, mk.TypeToIdentifier()+" key (not supported: only age and PGP)")
			}
		}
	}
	if len(out) == 0 {
		return "no key"
	}
	return strings.Join(out, ", ")
}

// maxDataKey bounds what a key service reads: a SOPS data key is 32 bytes.
const maxDataKey = 1 << 10

// memKeyService is a SOPS key service that decrypts data keys in process
// with the Decryptor's keys only. SOPS's LocalClient would build master
// keys that look for keys in the environment, the home directory and
// GNUPGHOME, and run gpg.
type memKeyService struct{ d *Decryptor }

var _ keyservice.KeyServiceClient = memKeyService{}

// Encrypt is refused: the controller only decrypts.
func (memKeyService) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("encryption is not supported")
}

// Decrypt decrypts a data key sealed for an age recipient or an OpenPGP key.
func (s memKeyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	var r io.Reader
	switch req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		if len(s.d.age) == 0 {
			return nil, errors.New("no age identity")
		}
		ar, err := age.Decrypt(agearmor.NewReader(bytes.NewReader(req.GetCiphertext())), s.d.age...)
		if err != nil {
			return nil, errors.New("no age identity matches")
		}
		r = ar
	case *keyservice.Key_PgpKey:
		if len(s.d.pgp) == 0 {
			return nil, errors.New("no OpenPGP key")
		}
		block, err := pgparmor.Decode(bytes.NewReader(req.GetCiphertext()))
		if err != nil {
			return nil, errors.New("the OpenPGP data key is not armored")
		}
		md, err := openpgp.ReadMessage(block.Body, s.d.pgp, nil, nil)
		if err != nil {
			return nil, errors.New("no OpenPGP key matches")
		}
		r = md.UnverifiedBody
	default:
		return nil, errors.New("only age and OpenPGP keys are supported")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxDataKey))
	if err != nil {
		return nil, errors.New("the data key does not decrypt")
	}
	return &keyservice.DecryptResponse{Plaintext: b}, nil
}
