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
	// envFiles are the env files of the generators of the kustomizations
	// read so far (checkEnvFile).
	envFiles map[string]bool
	// err is the first decryption failure: kustomize wraps the errors of
	// ReadFile in its own types, which errors.As cannot always see through.
	err error
}

func newDecryptingFS(fs filesys.FileSystem, dec *Decryptor) *decryptingFS {
	return &decryptingFS{FileSystem: fs, dec: dec, plain: map[string][]byte{}, configMapFiles: map[string]bool{}, envFiles: map[string]bool{}}
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
		f.noteEnvFiles(path.Dir(p), b)
	}
	if !IsEncrypted(name, b) {
		if f.envFiles[p] {
			if err := checkEnvFile(name, b); err != nil {
				return nil, f.fail(err)
			}
		}
		return b, nil
	}
	if f.configMapFiles[p] {
		return nil, f.fail(&DecryptionError{File: name, Reason: "it is SOPS-encrypted and used by a configMapGenerator: use a secretGenerator, so that the plaintext is kept in a Secret"})
	}
	out, err := f.dec.Decrypt(name, b)
	if err != nil {
		return nil, f.fail(err)
	}
	if f.envFiles[p] {
		if err := checkEnvFile(name, out); err != nil {
			return nil, f.fail(err)
		}
	}
	f.plain[p] = out
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
	return f.dec.Redact(err)
}

// Redact replaces the values decrypted so far in an error's message: the
// steps after the build (postBuild substitution, the apply) may quote the
// objects that hold them. The reason of a sync error is kept.
func (d *Decryptor) Redact(err error) error {
	if d == nil || err == nil || len(d.values) == 0 {
		return err
	}
	var se *syncError
	if errors.As(err, &se) {
		se.err = redactValues(se.err, d.values)
		return err
	}
	return redactValues(err, d.values)
}

// minRedacted is the shortest decrypted value redacted whole from
// messages, and the length of the fragments of longer values that are
// redacted too (an error may quote part of a value, or a line of a
// multi-line one). Shorter values ("1", "on") would scramble messages and
// reveal little.
const (
	minRedacted = 4
	fragment    = 8
	// maxFragments bounds the index of fragments (an error path must not
	// index megabytes of binary files); whole values are always redacted.
	maxFragments = 1 << 16
)

// redactValues replaces in err's message every decrypted value of at least
// minRedacted bytes and every run of text that shares fragment bytes with
// one.
func redactValues(err error, values []string) error {
	msg := err.Error()
	secret := make([]bool, len(msg))
	grams := map[string]bool{}
	for _, v := range values {
		if len(v) < minRedacted {
			continue
		}
		for i := 0; ; {
			j := strings.Index(msg[i:], v)
			if j < 0 {
				break
			}
			for k := i + j; k < i+j+len(v); k++ {
				secret[k] = true
			}
			i += j + 1
		}
		for k := 0; k+fragment <= len(v) && len(grams) < maxFragments; k++ {
			grams[v[k:k+fragment]] = true
		}
	}
	for i := 0; i+fragment <= len(msg); i++ {
		if grams[msg[i:i+fragment]] {
			for k := i; k < i+fragment; k++ {
				secret[k] = true
			}
		}
	}
	if !slices.Contains(secret, true) {
		return err
	}
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if !secret[i] {
			b.WriteByte(msg[i])
			continue
		}
		b.WriteString("[redacted]")
		for i+1 < len(msg) && secret[i+1] {
			i++
		}
	}
	return &redactedError{msg: b.String(), err: err}
}

// redactedError keeps the error chain (errors.Is) with a scrubbed message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

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
