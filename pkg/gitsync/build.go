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
func Build(root, path string) ([]*unstructured.Unstructured, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the checkout: %w", err)
	}
	dir, err := ConfinePath(realRoot, path)
	if err != nil {
		return nil, err
	}
	mem := filesys.MakeFsInMemory()
	var total int64
	if err := copyTree(realRoot, realRoot, "/repo", mem, &total, 0); err != nil {
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
	rm, err := krusty.MakeKustomizer(opts).Run(mem, target)
	if err != nil {
		return nil, fmt.Errorf("kustomize build of %q failed: %w", path, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("failed to render %q: %w", path, err)
	}
	objs, err := utils.ReadObjects(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("failed to decode the built objects of %q: %w", path, err)
	}
	return objs, nil
}

// copyTree copies src (inside root) to dst in mem. Symlinks are followed
// only when their target stays inside root.
func copyTree(root, src, dst string, mem filesys.FileSystem, total *int64, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%s: too many nested directories or symlinks", src)
	}
	if err := mem.MkdirAll(dst); err != nil {
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
		relName, _ := filepath.Rel(root, p)
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", relName, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(src, target)
			}
			if !within(root, filepath.Clean(target)) {
				return fmt.Errorf("symlink %s: %w", relName, ErrOutsideCheckout)
			}
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", relName, err)
			}
			if !within(root, resolved) {
				return fmt.Errorf("symlink %s: %w", relName, ErrOutsideCheckout)
			}
			p = resolved
		}
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("failed to stat %s: %w", relName, err)
		}
		if info.IsDir() {
			if err := copyTree(root, p, d, mem, total, depth+1); err != nil {
				return err
			}
			continue
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if *total += info.Size(); *total > maxTreeBytes {
			return fmt.Errorf("the checkout is larger than %d bytes", maxTreeBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("failed to read %s: %w", relName, err)
		}
		if err := mem.WriteFile(d, b); err != nil {
			return fmt.Errorf("failed to copy %s: %w", relName, err)
		}
	}
	return nil
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
