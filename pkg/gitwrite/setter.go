package gitwrite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// MarkerKey is the key of a setter comment. A YAML scalar followed on its
// line by
//
//	# {"$promotion": "<name>"}         the image: name[:tag][@digest]
//	# {"$promotion": "<name>:name"}    the image name alone
//	# {"$promotion": "<name>:tag"}     the tag alone
//	# {"$promotion": "<name>:digest"}  the digest alone (sha256:…)
//
// is set by the Setter of that name, as Flux's image automation sets
// fields marked {"$imagepolicy": "<namespace>:<policy>[:tag|:name]"}.
const MarkerKey = "$promotion"

// Marker forms: which part of the image a marked field receives.
const (
	formImage  = ""
	formName   = "name"
	formTag    = "tag"
	formDigest = "digest"
)

// Image is a promoted image reference.
type Image struct {
	// Name is the repository, e.g. ghcr.io/stefanprodan/podinfo.
	Name string
	// Tag is for humans when Digest is set.
	Tag string
	// Digest pins the image, e.g. sha256:….
	Digest string
}

// String is the reference: name[:tag][@digest].
func (i Image) String() string {
	s := i.Name
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// Setter sets the YAML fields marked for it (see MarkerKey) in the files
// under Path: every marked field of every .yaml or .yml file (every
// document of it) gets its part of Image. Comments and formatting are kept;
// files without a marked field are not touched.
type Setter struct {
	// Path is a file or a directory, relative to the checkout; empty is
	// the whole checkout.
	Path string
	// Name is the setter's name in the markers, e.g. podinfo.
	Name string
	// Image is what the marked fields receive.
	Image Image
}

func (s Setter) String() string {
	return fmt.Sprintf("setter %s in %s", s.Name, path.Clean(filepath.ToSlash(orDot(s.Path))))
}

func (s Setter) what() string {
	return fmt.Sprintf(`field marked # {%q: %q} (or %q, %q, %q)`, MarkerKey, s.Name, s.Name+":name", s.Name+":tag", s.Name+":digest")
}

// Apply implements Change.
func (s Setter) Apply(root string) error {
	if s.Name == "" || strings.ContainsAny(s.Name, "\"\\\n") {
		return fmt.Errorf("%s: the setter name must be non-empty, without quotes, backslashes or newlines", s)
	}
	if s.Image.Name == "" || (s.Image.Tag == "" && s.Image.Digest == "") {
		return fmt.Errorf("%s: the image needs a name and a tag or a digest", s)
	}
	start, err := confine(root, s.Path, s.what())
	if err != nil {
		return err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("failed to resolve the checkout: %w", err)
	}
	found, files := 0, 0
	err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		// Symlinks are not followed: they could lead out of the checkout.
		ext := filepath.Ext(p)
		if !d.Type().IsRegular() || (ext != ".yaml" && ext != ".yml") {
			return nil
		}
		if files++; files > maxFiles {
			return fmt.Errorf("%s: more than %d files under %s; narrow the path", s, maxFiles, orDot(s.Path))
		}
		rel, err := filepath.Rel(realRoot, p)
		if err != nil {
			return fmt.Errorf("failed to name %s: %w", p, err)
		}
		n, err := s.applyFile(p, filepath.ToSlash(rel))
		found += n
		return err
	})
	if err != nil {
		return err
	}
	if found == 0 {
		return &NotFoundError{Path: filepath.ToSlash(orDot(s.Path)), What: s.what()}
	}
	return nil
}

// applyFile sets the marked fields of one file and returns how many it
// found (changed or already set).
func (s Setter) applyFile(file, rel string) (int, error) {
	data, err := readBounded(file, rel)
	if err != nil {
		return 0, err
	}
	// Most files name no setter: do not parse them.
	if !bytes.Contains(data, []byte(MarkerKey)) || !bytes.Contains(data, []byte(s.Name)) {
		return 0, nil
	}
	found := 0
	var missing error
	out, changed, err := editYAML(data, rel, func(n *yaml.RNode) (bool, error) {
		c := false
		walkScalars(n.YNode(), func(v *yaml.Node, comment string) {
			form, ok := s.match(comment)
			if !ok {
				return
			}
			found++
			want := s.value(form)
			if want == "" {
				if missing == nil {
					missing = fmt.Errorf("%s: %s marks a field for the %s of the image, and the image %s has none", s, rel, form, s.Image)
				}
				return
			}
			if v.Value == want {
				return
			}
			v.Value = want
			v.Tag = yaml.NodeTagString
			v.Style = quoteStyle(want, v.Style)
			c = true
		})
		return c, nil
	})
	if err == nil {
		err = missing
	}
	if err != nil {
		return 0, err
	}
	if !changed {
		return found, nil
	}
	return found, writeKeepMode(file, rel, out)
}

// walkScalars calls f for every scalar value with the line comment that
// follows it. yaml.v3 attaches the comment of `key: value # c` to the value,
// or to the key of a mapping pair; both are taken.
func walkScalars(n *yaml.Node, f func(v *yaml.Node, comment string)) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				f(c, c.LineComment)
				continue
			}
			walkScalars(c, f)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode {
				comment := v.LineComment
				if comment == "" {
					comment = k.LineComment
				}
				f(v, comment)
				continue
			}
			walkScalars(v, f)
		}
	}
}

// match tells whether comment marks a field for s, and which form.
func (s Setter) match(comment string) (string, bool) {
	m, err := parseMarker(comment)
	if err != nil || m == "" {
		return "", false
	}
	if m == s.Name {
		return formImage, true
	}
	// The form follows the last colon: a setter name may hold colons.
	i := strings.LastIndex(m, ":")
	if i < 0 || m[:i] != s.Name {
		return "", false
	}
	form := m[i+1:]
	switch form {
	case formName, formTag, formDigest:
		return form, true
	}
	return "", false
}

// parseMarker reads the setter name of a comment `# {"$promotion": "x"}`,
// or "" when the comment is not a marker.
func parseMarker(comment string) (string, error) {
	c := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(comment), "#"))
	if !strings.HasPrefix(c, "{") || !strings.Contains(c, MarkerKey) {
		return "", nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c), &m); err != nil {
		return "", fmt.Errorf("malformed setter comment %q: %w", c, err)
	}
	v, ok := m[MarkerKey].(string)
	if !ok {
		return "", errors.New("the setter comment's value is not a string")
	}
	return v, nil
}

// value is what a field of form receives.
func (s Setter) value(form string) string {
	switch form {
	case formName:
		return s.Image.Name
	case formTag:
		return s.Image.Tag
	case formDigest:
		return s.Image.Digest
	}
	return s.Image.String()
}
