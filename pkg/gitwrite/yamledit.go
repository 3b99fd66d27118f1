package gitwrite

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// editYAML parses the documents of data with kyaml, which keeps comments,
// key order and the indentation of sequences, lets edit change each
// document, and returns the re-encoded file when edit reported a change.
// A file edit did not change is returned as it was, byte for byte, so that
// files without a match are never reformatted.
func editYAML(data []byte, rel string, edit func(*yaml.RNode) (bool, error)) ([]byte, bool, error) {
	var out bytes.Buffer
	rw := &kio.ByteReadWriter{
		Reader:            bytes.NewReader(data),
		Writer:            &out,
		PreserveSeqIndent: true,
		// Keep the documents of a file that are not Kubernetes objects
		// (a Helm values file) as they are.
		OmitReaderAnnotations: false,
	}
	nodes, err := rw.Read()
	if err != nil {
		return nil, false, fmt.Errorf("failed to parse %s as YAML: %w", rel, err)
	}
	changed := false
	for _, n := range nodes {
		c, err := edit(n)
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
	}
	if !changed {
		return data, false, nil
	}
	if err := rw.Write(nodes); err != nil {
		return nil, false, fmt.Errorf("failed to encode %s: %w", rel, err)
	}
	return out.Bytes(), true, nil
}
