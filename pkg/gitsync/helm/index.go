package helm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/yaml"
)

// index is the part of a Helm repository's index.yaml that picking a
// chart needs. It is parsed here rather than with Helm's repo package,
// which brings Helm's plugin runtime (a WebAssembly engine) into Sluice.
type index struct {
	APIVersion string                  `json:"apiVersion"`
	Entries    map[string][]indexEntry `json:"entries"`
}

// indexEntry is one version of a chart in an index.
type indexEntry struct {
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	// Digest is the sha256 of the archive, hex-encoded.
	Digest string `json:"digest"`
}

// pickVersion returns the highest version of chart name in the index
// document data that satisfies constraint (stable versions only when it is
// empty, as Helm).
func pickVersion(data []byte, name, constraint string) (*indexEntry, error) {
	var idx index
	if err := yaml.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("invalid index.yaml: %w", err)
	}
	if idx.APIVersion == "" {
		return nil, errors.New("invalid index.yaml: no apiVersion (is this a Helm repository?)")
	}
	entries, ok := idx.Entries[name]
	if !ok || len(entries) == 0 {
		return nil, fmt.Errorf("chart %q not found in the index", name)
	}
	c := "*"
	if constraint != "" {
		c = constraint
	}
	cons, err := semver.NewConstraint(c)
	if err != nil {
		return nil, fmt.Errorf("invalid version constraint %q: %w", constraint, err)
	}
	type candidate struct {
		v *semver.Version
		e *indexEntry
	}
	var found []candidate
	var all semver.Collection
	for i := range entries {
		v, err := semver.NewVersion(entries[i].Version)
		if err != nil {
			continue // Helm skips what is not semver too
		}
		all = append(all, v)
		if cons.Check(v) {
			found = append(found, candidate{v, &entries[i]})
		}
	}
	if len(found) == 0 {
		sort.Sort(sort.Reverse(all))
		versions := make([]string, len(all))
		for i, v := range all {
			versions[i] = v.Original()
		}
		return nil, fmt.Errorf("no version of chart %q matches %q (versions: %s)", name, versionOrAny(constraint), joinFirst(versions, 10))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].v.GreaterThan(found[j].v) })
	return found[0].e, nil
}
