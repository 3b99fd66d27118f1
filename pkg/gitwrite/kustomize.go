package gitwrite

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// KustomizeImage sets an entry of images: in a kustomization, as
// `kustomize edit set image` does: the entry named Name gets NewName,
// NewTag and Digest (empty ones are removed, so that the entry says exactly
// what was promoted and an older digest never outlives a new tag). A
// missing entry is appended, a missing images: list created. Comments, key
// order and formatting of the rest of the file are kept.
type KustomizeImage struct {
	// Dir is the kustomization's directory, relative to the checkout.
	Dir string
	// Name is the image name the entry matches in the resources, e.g.
	// ghcr.io/stefanprodan/podinfo.
	Name string
	// NewName replaces the name (another registry or repository); optional.
	NewName string
	// NewTag is the tag, for humans when Digest is set.
	NewTag string
	// Digest pins the image, e.g. sha256:….
	Digest string
}

func (k KustomizeImage) String() string {
	return fmt.Sprintf("image %s in %s", k.Name, path.Clean(filepath.ToSlash(orDot(k.Dir))))
}

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// Apply implements Change.
func (k KustomizeImage) Apply(root string) error {
	if k.Name == "" {
		return fmt.Errorf("%s: the image name is empty", k)
	}
	if k.NewTag == "" && k.Digest == "" && k.NewName == "" {
		return fmt.Errorf("%s: none of newName, newTag and digest is set", k)
	}
	what := "kustomization (" + strings.Join(kustomizationNames, ", ") + ")"
	dir, err := confine(root, k.Dir, what)
	if err != nil {
		return err
	}
	var file, rel string
	for _, n := range kustomizationNames {
		p := filepath.Join(dir, n)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			file, rel = p, path.Join(filepath.ToSlash(orDot(k.Dir)), n)
			break
		}
	}
	if file == "" {
		return &NotFoundError{Path: filepath.ToSlash(orDot(k.Dir)), What: what}
	}
	data, err := readBounded(file, rel)
	if err != nil {
		return err
	}
	docs := 0
	out, changed, err := editYAML(data, rel, func(n *yaml.RNode) (bool, error) {
		docs++
		if docs > 1 {
			return false, fmt.Errorf("%s holds several YAML documents; a kustomization is one", rel)
		}
		return k.set(n, rel)
	})
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	return writeKeepMode(file, rel, out)
}

// set edits the images: entry of a kustomization and reports whether it
// changed.
func (k KustomizeImage) set(n *yaml.RNode, rel string) (bool, error) {
	images, err := n.Pipe(yaml.LookupCreate(yaml.SequenceNode, "images"))
	if err != nil {
		return false, fmt.Errorf("%s: failed to read images: %w", rel, err)
	}
	var entry *yaml.RNode
	elems, err := images.Elements()
	if err != nil {
		return false, fmt.Errorf("%s: images is not a list: %w", rel, err)
	}
	for _, e := range elems {
		if name := e.Field("name"); name != nil && yaml.GetValue(name.Value) == k.Name {
			entry = e
			break
		}
	}
	if entry == nil {
		entry = yaml.NewMapRNode(&map[string]string{"name": k.Name})
		if err := images.PipeE(yaml.Append(entry.YNode())); err != nil {
			return false, fmt.Errorf("%s: failed to add image %s: %w", rel, k.Name, err)
		}
		// Append copies the node; edit the one in the list.
		elems, err := images.Elements()
		if err != nil {
			return false, fmt.Errorf("%s: images is not a list: %w", rel, err)
		}
		entry = elems[len(elems)-1]
	}
	changed := false
	for _, f := range []struct{ key, value string }{{"newName", k.NewName}, {"newTag", k.NewTag}, {"digest", k.Digest}} {
		old := entry.Field(f.key)
		switch {
		case f.value == "" && old != nil:
			if _, err := entry.Pipe(yaml.Clear(f.key)); err != nil {
				return false, fmt.Errorf("%s: failed to remove %s of image %s: %w", rel, f.key, k.Name, err)
			}
			changed = true
		case f.value == "":
		case old != nil && old.Value.YNode().Kind == yaml.ScalarNode && old.Value.YNode().Value == f.value:
		case old != nil && old.Value.YNode().Kind == yaml.ScalarNode:
			// Keep the node (and its comments); only the value changes.
			old.Value.YNode().Value = f.value
			old.Value.YNode().Tag = yaml.NodeTagString
			old.Value.YNode().Style = quoteStyle(f.value, old.Value.YNode().Style)
			changed = true
		default:
			if err := entry.PipeE(yaml.SetField(f.key, yaml.NewStringRNode(f.value))); err != nil {
				return false, fmt.Errorf("%s: failed to set %s of image %s: %w", rel, f.key, k.Name, err)
			}
			changed = true
		}
	}
	return changed, nil
}

// quoteStyle keeps the style of a scalar, unless the new value would read
// as another type unquoted (a tag 1.10 is a string, not a number).
func quoteStyle(v string, style yaml.Style) yaml.Style {
	if style != 0 {
		return style
	}
	if yaml.IsYaml1_1NonString(&yaml.Node{Kind: yaml.ScalarNode, Value: v}) || !isPlainString(v) {
		return yaml.DoubleQuotedStyle
	}
	return style
}

// isPlainString tells whether v, unquoted, reads back as the string v.
func isPlainString(v string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+v), &n); err != nil {
		return false
	}
	if len(n.Content) == 0 || len(n.Content[0].Content) < 2 {
		return false
	}
	s := n.Content[0].Content[1]
	return s.Tag == yaml.NodeTagString && s.Value == v
}
