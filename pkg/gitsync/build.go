package gitsync

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ErrOutsideCheckout is returned for a path or symlink that leads out of the checkout.
var ErrOutsideCheckout = errors.New("path leads outside the checkout")

// ErrRemoteBase is returned for a kustomization that names a remote base or file.
var ErrRemoteBase = errors.New("remote bases and files are not allowed")

// maxTreeBytes bounds the size of the files copied from a checkout.
const maxTreeBytes = 256 << 20

// ConfinePath joins a relative spec.path to root and refuses ".." elements,
// absolute paths, and symlinks whose target is outside root.
func ConfinePath(root, rel string) (string, error) {
	clean := filepath.ToSlash(rel)
	if filepath.IsAbs(rel) || strings.HasPrefix(clean, "/") {
		return "", fmt.Errorf("spec.path %q: %w (it must be relative)", rel, ErrOutsideCheckout)
	}
	if slices.Contains(strings.Split(clean, "/"), "..") {
		return "", fmt.Errorf("spec.path %q: %w (it contains '..')", rel, ErrOutsideCheckout)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("failed to resolve the checkout: %w", err)
	}
	p := filepath.Join(realRoot, filepath.FromSlash(clean))
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("spec.path %q: %w", rel, err)
	}
	if !within(realRoot, resolved) {
		return "", fmt.Errorf("spec.path %q: %w", rel, ErrOutsideCheckout)
	}
	return resolved, nil
}

func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// Build copies the checkout into memory (refusing symlinks that escape it),
// and builds path with kustomize: plugins, exec and remote bases disabled.
// A directory without a kustomization is taken as all its YAML manifests.
// SOPS files the build reads are decrypted with WithDecryptor's keys, or
// refused without it.
func Build(root, path string, options ...BuildOption) ([]*unstructured.Unstructured, error) {
	var cfg buildConfig
	for _, o := range options {
		o(&cfg)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the checkout: %w", err)
	}
	dir, err := ConfinePath(realRoot, path)
	if err != nil {
		return nil, err
	}
	mem := filesys.MakeFsInMemory()
	if err := copyTree(realRoot, realRoot, "/repo", mem); err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(realRoot, dir)
	target := filepath.ToSlash(filepath.Join("/repo", rel))
	if !hasKustomization(mem, target) {
		if err := writePlainKustomization(mem, target); err != nil {
			return nil, err
		}
	}
	if err := refuseRemote(mem, target, map[string]bool{}); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	dfs := newDecryptingFS(mem, cfg.decryptor)
	rm, err := krusty.MakeKustomizer(opts).Run(dfs, target)
	if dfs.err != nil {
		return nil, dfs.err
	}
	if err != nil {
		return nil, dfs.redact(fmt.Errorf("kustomize build of %q failed: %w", path, err))
	}
	out, err := rm.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("failed to render %q: %w", path, err)
	}
	objs, err := utils.ReadObjects(bytes.NewReader(out))
	if err != nil {
		return nil, dfs.redact(fmt.Errorf("failed to decode the built objects of %q: %w", path, err))
	}
	if err := refuseEncrypted(objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// maxLinkedEntries bounds the files and directories copied through
// symlinked directories. The checkout's own tree is bounded by the fetch, but
// a few links per directory pointing at the next one copy it exponentially
// often (2^depth) without any loop.
const maxLinkedEntries = 1 << 14

// treeCopier copies a checkout into memory within the bounds above.
type treeCopier struct {
	root  string
	mem   filesys.FileSystem
	bytes int64
	// linked counts the entries copied below a symlinked directory.
	linked int
	// open are the real directories being copied, from the root down: a
	// symlink to one of them is a loop.
	open []string
}

// copyTree copies src (inside root) to dst in mem. Symlinks are followed
// only when their target stays inside root and is not a directory being
// copied (a loop): links to "." or ".." would otherwise copy the tree again
// and again, exponentially when a directory has several of them.
func copyTree(root, src, dst string, mem filesys.FileSystem) error {
	c := &treeCopier{root: root, mem: mem}
	return c.copy(src, dst, false)
}

func (c *treeCopier) copy(src, dst string, viaLink bool) error {
	if len(c.open) > 32 {
		return fmt.Errorf("%s: too many nested directories or symlinks", src)
	}
	c.open = append(c.open, src)
	defer func() { c.open = c.open[:len(c.open)-1] }()
	if err := c.mem.MkdirAll(dst); err != nil {
		return fmt.Errorf("failed to copy the checkout: %w", err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", src, err)
	}
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		p := filepath.Join(src, e.Name())
		d := dst + "/" + e.Name()
		relName := c.rel(p)
		if viaLink {
			if c.linked++; c.linked > maxLinkedEntries {
				return fmt.Errorf("symlinked directories (at %s) expand to more than %d files and directories: link fewer directories", relName, maxLinkedEntries)
			}
		}
		link := e.Type()&fs.ModeSymlink != 0
		if link {
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", relName, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(src, target)
			}
			if !within(c.root, filepath.Clean(target)) {
				return fmt.Errorf("symlink %s: %w", relName, ErrOutsideCheckout)
			}
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", relName, err)
			}
			if !within(c.root, resolved) {
				return fmt.Errorf("symlink %s: %w", relName, ErrOutsideCheckout)
			}
			if slices.Contains(c.open, resolved) {
				return fmt.Errorf("symlink %s: it loops back to %s: remove it", relName, c.rel(resolved))
			}
			p = resolved
		}
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("failed to stat %s: %w", relName, err)
		}
		if info.IsDir() {
			if err := c.copy(p, d, viaLink || link); err != nil {
				return err
			}
			continue
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if c.bytes += info.Size(); c.bytes > maxTreeBytes {
			return fmt.Errorf("the checkout is larger than %d bytes", maxTreeBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", relName, err)
		}
		if err := c.mem.WriteFile(d, b); err != nil {
			return fmt.Errorf("failed to copy %s: %w", relName, err)
		}
	}
	return nil
}

// rel names a path of the checkout relative to its root, for messages.
func (c *treeCopier) rel(p string) string {
	r, err := filepath.Rel(c.root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func hasKustomization(mem filesys.FileSystem, dir string) bool {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if mem.Exists(dir + "/" + n) {
			return true
		}
	}
	return false
}

// writePlainKustomization lists the YAML files under dir as resources.
func writePlainKustomization(mem filesys.FileSystem, dir string) error {
	var files []string
	err := mem.Walk(dir, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			if p != dir && strings.HasPrefix(info.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
			r, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(r))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to list the manifests: %w", err)
	}
	slices.Sort(files)
	k := types.Kustomization{TypeMeta: types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind}, Resources: files}
	b, err := yaml.Marshal(k)
	if err != nil {
		return fmt.Errorf("failed to write a kustomization: %w", err)
	}
	return mem.WriteFile(dir+"/kustomization.yaml", b)
}

var remoteRef = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)|[?&]ref=`)

// refuseRemote refuses a kustomization in dir, or in a local base it
// reaches, that names a remote resource or base.
func refuseRemote(mem filesys.FileSystem, dir string, seen map[string]bool) error {
	if seen[dir] || len(seen) > 256 {
		return nil
	}
	seen[dir] = true
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		p := dir + "/" + n
		if !mem.Exists(p) {
			continue
		}
		b, err := mem.ReadFile(p)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", p, err)
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(b, &k); err != nil {
			return fmt.Errorf("failed to parse %s: %w", strings.TrimPrefix(p, "/repo/"), err)
		}
		//nolint:staticcheck // SA1019: old kustomizations still list remote bases in the deprecated bases field, and those must be refused too.
		for _, r := range slices.Concat(k.Resources, k.Components, k.Bases, k.Crds) {
			if remoteRef.MatchString(r) {
				return fmt.Errorf("%s names %q: %w", strings.TrimPrefix(p, "/repo/"), r, ErrRemoteBase)
			}
			sub := filepath.ToSlash(filepath.Join(dir, r))
			if !strings.HasPrefix(sub+"/", "/repo/") {
				return fmt.Errorf("%s names %q: %w", strings.TrimPrefix(p, "/repo/"), r, ErrOutsideCheckout)
			}
			if mem.IsDir(sub) {
				if err := refuseRemote(mem, sub, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
