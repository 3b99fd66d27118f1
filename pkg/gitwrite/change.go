// Package gitwrite changes a stage's desired state in Git: it clones a
// branch, applies changes to its files (an image in a kustomization, YAML
// fields marked with setter comments), commits them as a configured
// identity, optionally signed, and pushes without ever forcing. A change
// that is already in the branch commits nothing, so a retried promotion
// never commits twice.
package gitwrite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// Bounds of the files a change reads: configuration repositories are small,
// and a huge or endless tree must not exhaust the controller.
const (
	// maxFileBytes bounds one YAML file.
	maxFileBytes = 4 << 20
	// maxFiles bounds the files a Setter walks.
	maxFiles = 20000
)

// Change edits the files of a checkout. root is the checkout's directory;
// a Change must not read or write outside it.
type Change interface {
	Apply(root string) error
	// String describes the change for logs and errors, e.g.
	// "image podinfo in overlays/production".
	String() string
}

// ErrSetterNotFound is returned (wrapped in a *NotFoundError) when a change
// finds nothing to set: no kustomization in the directory, no field marked
// for the setter.
var ErrSetterNotFound = errors.New("nothing to set")

// NotFoundError says which path was searched for what.
type NotFoundError struct {
	// Path is the file or directory searched, relative to the checkout.
	Path string
	// What was looked for, e.g. `a field marked # {"$promotion": "podinfo"}`.
	What string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s: %s: found no %s", ErrSetterNotFound, e.Path, e.What)
}

// Unwrap makes errors.Is(err, ErrSetterNotFound) true.
func (e *NotFoundError) Unwrap() error { return ErrSetterNotFound }

// IsSetterNotFound tells whether err says that a change found nothing to set.
func IsSetterNotFound(err error) bool { return errors.Is(err, ErrSetterNotFound) }

// confine resolves rel in root and refuses paths that lead out of it. A
// path that does not exist is a NotFoundError naming it.
func confine(root, rel, what string) (string, error) {
	if rel == "" {
		rel = "."
	}
	p, err := gitsync.ConfinePath(root, rel)
	if errors.Is(err, os.ErrNotExist) {
		return "", &NotFoundError{Path: filepath.ToSlash(rel), What: what}
	}
	if err != nil {
		return "", err
	}
	return p, nil
}

// readBounded reads a file of at most maxFileBytes.
func readBounded(path, rel string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", rel, err)
	}
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a change reads", rel, fi.Size(), maxFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", rel, err)
	}
	return b, nil
}

// writeKeepMode rewrites a file keeping its permissions.
func writeKeepMode(path, rel string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", rel, err)
	}
	if err := os.WriteFile(path, data, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("failed to write %s: %w", rel, err)
	}
	return nil
}
