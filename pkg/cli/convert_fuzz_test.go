package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// FuzzConvert feeds arbitrary YAML to `kubectl sluice convert`. Invariants:
// no panic; the output of a conversion that succeeds parses as the same
// number of YAML documents, holds exactly Converted more sluice.dev objects
// than the input, and converting it again changes nothing.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "convert", "*.yaml"))
	samples, _ := filepath.Glob(filepath.Join("..", "..", "api", "v1beta1", "testdata", "flagger", "*.yaml"))
	for _, p := range append(seeds, samples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nspec: {canaryAnalysis: {stepWeight: 5}}\n",
		"apiVersion: \"flagger.app/v1beta1\"\nkind: MetricTemplate\n",
		"apiVersion: 'flagger.app/v1beta1'\nkind: AlertProvider\nspec: {type: slack}\n",
		"apiVersion: &v flagger.app/v1beta1\nkind: Canary\n---\napiVersion: *v\nkind: Canary\n",
		"apiVersion: \"flagger.app\\/v1beta1\"\nkind: Canary\n",
		"kind: List\nitems:\n- {apiVersion: flagger.app/v1beta1, kind: Canary, spec: {analysis: [1]}}\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nspec:\n  analysis:\n    metrics: {a: b}\n    webhooks: 3\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: [x]}\nspec: [1, 2]\n",
		"\ufeffapiVersion: flagger.app/v1beta1\r\nkind: Canary\r\n",
		"apiVersion: >-\n  flagger.app/v1beta1\nkind: Canary\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nspec:\n  analysis:\n    webhooks:\n      - metadata:\n          cmd: \"hey -z 1m -q 10 -c 2 http://a.test/\"\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nspec:\n  analysis:\n    webhooks:\n      - metadata: {type: bash, cmd: 'hey -m POST -d \"x\" http://a/'}\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nspec:\n  analysis:\n    webhooks:\n      - metadata:\n          type: \"cmd\"\n          cmd: hey http://a.test/ # c\n",
		"---\n...\n---\n", "", "- a\n- b\n", "{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ConvertFlagger("fuzz", data)
		if err != nil {
			return
		}
		in, err := sluiceObjects(data)
		if err != nil {
			t.Fatalf("the input decoded for the conversion but not for the check: %v", err)
		}
		out, err := sluiceObjects(res.Output)
		if err != nil {
			t.Fatalf("the output does not parse: %v\ninput:\n%s\noutput:\n%s", err, data, res.Output)
		}
		if out.docs != in.docs {
			t.Fatalf("%d documents in, %d out:\n%s", in.docs, out.docs, res.Output)
		}
		if out.sluice-in.sluice != res.Converted {
			t.Fatalf("Converted is %d, but the output has %d more sluice.dev objects:\n%s", res.Converted, out.sluice-in.sluice, res.Output)
		}
		again, err := ConvertFlagger("fuzz", res.Output)
		if err != nil {
			t.Fatalf("converting the output again fails: %v\n%s", err, res.Output)
		}
		if again.Converted != 0 || !bytes.Equal(again.Output, res.Output) {
			t.Fatalf("converting the output again changes it (%d objects):\n%s\nthen:\n%s", again.Converted, res.Output, again.Output)
		}
	})
}

type objectCount struct{ docs, sluice int }

// sluiceObjects counts the YAML documents of a stream and the objects (items
// of a List included) whose apiVersion is sluice.dev/v1beta1.
func sluiceObjects(data []byte) (objectCount, error) {
	var c objectCount
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.docs++
		if len(doc.Content) > 0 {
			c.sluice += countSluice(doc.Content[0])
		}
	}
}

func countSluice(n *yaml.Node) int {
	if scalar(child(n, "kind")) == "List" {
		total := 0
		if items := child(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				total += countSluice(it)
			}
		}
		return total
	}
	if v := child(n, "apiVersion"); v != nil && v.Value == sluicev1beta1.GroupVersion.String() {
		return 1
	}
	return 0
}
