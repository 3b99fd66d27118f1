package gitsync

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/kustomize/api/konfig"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ReasonDecryptionFailed is the condition reason when a SOPS file could not
// be decrypted, its keys Secret is missing or unusable, or it is encrypted
// without spec.decryption.
const ReasonDecryptionFailed = "DecryptionFailed"

// BuildOption changes how Build builds.
type BuildOption func(*buildConfig)

type buildConfig struct {
	decryptor *Decryptor
}

// WithDecryptor decrypts the SOPS files the build reads with d. Without
// it (or with a nil d) an encrypted file fails the build.
func WithDecryptor(d *Decryptor) BuildOption {
	return func(c *buildConfig) { c.decryptor = d }
}

// decryptingFS is the build's view of the in-memory checkout: every file
// kustomize reads (resources, patches, secretGenerator envs and files) is
// decrypted as it is read, so that kustomize only ever sees plaintext and
// a generator hashes the decrypted content. Files the build does not read
// are not decrypted, so that another path's secrets, encrypted for other
// keys, do not fail this one.
type decryptingFS struct {
	filesys.FileSystem
	dec *Decryptor
	// plain caches the decrypted files: kustomize reads a base once per
	// overlay that includes it.
	plain map[string][]byte
	// configMapFiles are the files named by a configMapGenerator of a
	// kustomization read so far: decrypting one would put plaintext in a
	// ConfigMap.
	configMapFiles map[string]bool
	// values are the decrypted strings, to redact them from errors.
	values []string
	// err is the first decryption failure: kustomize wraps the errors of
	// ReadFile in its own types, which errors.As cannot always see through.
	err error
}

func newDecryptingFS(fs filesys.FileSystem, dec *Decryptor) *decryptingFS {
	return &decryptingFS{FileSystem: fs, dec: dec, plain: map[string][]byte{}, configMapFiles: map[string]bool{}}
}

// ReadFile returns the plaintext of a SOPS file and any other file as it is.
func (f *decryptingFS) ReadFile(p string) ([]byte, error) {
	if b, ok := f.plain[p]; ok {
		return b, nil
	}
	b, err := f.FileSystem.ReadFile(p)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(p, "/repo/")
	if slices.Contains(konfig.RecognizedKustomizationFileNames(), path.Base(p)) {
		// Build checks the kustomizations for remote bases before kustomize
		// runs: an encrypted one would hide them.
		if IsEncrypted(name, b) {
			return nil, f.fail(&DecryptionError{File: name, Reason: "a kustomization cannot be SOPS-encrypted: encrypt the files it names instead"})
		}
		f.noteConfigMapFiles(path.Dir(p), b)
	}
	if !IsEncrypted(name, b) {
		return b, nil
	}
	if f.configMapFiles[p] {
		return nil, f.fail(&DecryptionError{File: name, Reason: "it is SOPS-encrypted and used by a configMapGenerator: use a secretGenerator, so that the plaintext is kept in a Secret"})
	}
	out, err := f.dec.Decrypt(name, b)
	if err != nil {
		return nil, f.fail(err)
	}
	f.plain[p] = out
	f.values = append(f.values, plaintextValues(name, out)...)
	return out, nil
}

func (f *decryptingFS) fail(err error) error {
	if f.err == nil {
		f.err = err
	}
	return err
}

// noteConfigMapFiles records the files of the configMapGenerators of the
// kustomization in dir. A kustomization that does not parse is left to
// kustomize to report.
func (f *decryptingFS) noteConfigMapFiles(dir string, b []byte) {
	var k kusttypes.Kustomization
	if yaml.Unmarshal(b, &k) != nil {
		return
	}
	for _, g := range k.ConfigMapGenerator {
		for _, e := range slices.Concat(g.EnvSources, g.FileSources, []string{g.EnvSource}) {
			if e == "" {
				continue
			}
			// files: entries may be "key=path".
			if i := strings.Index(e, "="); i >= 0 {
				e = e[i+1:]
			}
			f.configMapFiles[path.Join(dir, e)] = true
		}
	}
}

// redact replaces the decrypted values in a build error's message: a
// kustomize or YAML error may quote the content of a file it read.
func (f *decryptingFS) redact(err error) error {
	msg := err.Error()
	red := msg
	for _, v := range f.values {
		red = strings.ReplaceAll(red, v, "[redacted]")
	}
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

// redactedError keeps the error chain (errors.Is) with a scrubbed message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// minRedacted is the shortest decrypted value redacted from messages:
// shorter ones ("1", "on") would scramble a message and reveal little.
const minRedacted = 4

// plaintextValues are the leaf strings of a decrypted file (and the file
// itself for a binary one), as they could appear in an error message.
func plaintextValues(name string, plain []byte) []string {
	var out []string
	add := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); len(l) >= minRedacted {
				out = append(out, l)
			}
		}
	}
	var doc any
	if yaml.Unmarshal(plain, &doc) == nil {
		var walk func(any)
		walk = func(v any) {
			switch t := v.(type) {
			case map[string]any:
				for _, x := range t {
					walk(x)
				}
			case []any:
				for _, x := range t {
					walk(x)
				}
			case string:
				add(t)
			}
		}
		walk(doc)
	}
	if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" && ext != ".json" {
		// dotenv values and plain files.
		for _, l := range strings.Split(string(plain), "\n") {
			if _, v, ok := strings.Cut(l, "="); ok {
				add(v)
			}
			add(l)
		}
	}
	return out
}

// refuseEncrypted fails for a built object that still carries SOPS
// metadata: nothing read by the build may reach the cluster as ciphertext.
func refuseEncrypted(objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if m, ok := o.Object["sops"].(map[string]any); ok && m["mac"] != nil {
			return &DecryptionError{File: fmt.Sprintf("%s %s", o.GetKind(), o.GetName()), Reason: "the built object still carries SOPS metadata"}
		}
	}
	return nil
}

// decryptor reads the keys of spec.decryption; nil without it.
func (r *GitSyncReconciler) decryptor(ctx context.Context, gs *sluicev1beta1.GitSync) (*Decryptor, error) {
	if gs.Spec.Decryption == nil {
		return nil, nil
	}
	name := gs.Spec.Decryption.SecretRef.Name
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gs.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the decryption Secret %s (spec.decryption.secretRef) is not found: %w", name, err)
		}
		return nil, fmt.Errorf("failed to read the decryption Secret %s: %w", name, err)
	}
	d, err := NewDecryptor(name, s.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecryption, err)
	}
	return d, nil
}

// decryptionFailed tells a build error caused by decryption.
func decryptionFailed(err error) bool {
	return errors.Is(err, ErrDecryption)
}
