package gitsync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"

	kusttypes "sigs.k8s.io/kustomize/api/types"
)

// ErrEnvFromController is returned for a generator's env file with a line
// that names a variable without a value. kustomize reads such a value from
// the environment of the process that builds, which here is the controller:
// a commit could copy the controller's environment into a Secret or a
// ConfigMap its author can read.
var ErrEnvFromController = errors.New("an env file line without a value would read the controller's environment")

// noteEnvFiles records the env files of the configMapGenerators and
// secretGenerators of the kustomization in dir, so that ReadFile checks
// them. A kustomization that does not parse is left to kustomize to report.
func (f *decryptingFS) noteEnvFiles(dir string, b []byte) {
	var k kusttypes.Kustomization
	if yaml.Unmarshal(b, &k) != nil {
		return
	}
	var args []kusttypes.GeneratorArgs
	for _, g := range k.ConfigMapGenerator {
		args = append(args, g.GeneratorArgs)
	}
	for _, g := range k.SecretGenerator {
		args = append(args, g.GeneratorArgs)
	}
	for _, a := range args {
		for _, e := range slices.Concat(a.EnvSources, []string{a.EnvSource}) {
			if e != "" {
				f.envFiles[path.Join(dir, e)] = true
			}
		}
	}
}

// checkEnvFile fails for a line kustomize would complete from the
// environment: not blank, not a comment, and without "=". It parses lines
// as kustomize does (a UTF-8 BOM on the first line, leading space).
func checkEnvFile(name string, b []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), len(b)+1)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		line = bytes.TrimLeftFunc(line, unicode.IsSpace)
		if len(line) == 0 || line[0] == '#' || bytes.ContainsRune(line, '=') {
			continue
		}
		// Only the name is quoted: it is what the author wrote, and the
		// value it would take is exactly what must not leave the controller.
		key := strings.TrimSpace(string(line))
		if r := []rune(key); len(r) > 64 {
			key = string(r[:63]) + "…"
		}
		return fmt.Errorf("%s line %d: %q has no value: %w; write %s=<value>", name, n, key, ErrEnvFromController, key)
	}
	return nil
}
