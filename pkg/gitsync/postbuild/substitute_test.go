package postbuild

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-${ENV:=dev}
  namespace: apps
spec:
  replicas: ${REPLICAS}
  paused: ${PAUSED:=false}
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/example/web:${APP_TAG}
          args: ["--literal=$${NOT_A_VAR}", "--port=${PORT:-8080}"]
          env:
            - name: LONG
              value: "a very long value that goes on and on and on and on and on and on and on and on and on ${APP_TAG} end"
`

func TestSubstitute_Deployment(t *testing.T) {
	in := obj(t, deployment)
	orig := in.DeepCopy()
	out, err := Substitute([]*unstructured.Unstructured{in}, map[string]string{"APP_TAG": "1.2.3", "REPLICAS": "3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := out[0]
	if o.GetName() != "web-dev" {
		t.Errorf("name = %q", o.GetName())
	}
	r, found, err := unstructured.NestedInt64(o.Object, "spec", "replicas")
	if err != nil || !found || r != 3 {
		t.Errorf("replicas = %v (found %v, %v), want the integer 3", o.Object["spec"].(map[string]any)["replicas"], found, err)
	}
	p, found, err := unstructured.NestedBool(o.Object, "spec", "paused")
	if err != nil || !found || p {
		t.Errorf("paused = %v (found %v, %v), want the boolean false", p, found, err)
	}
	c := o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if c["image"] != "ghcr.io/example/web:1.2.3" {
		t.Errorf("image = %v", c["image"])
	}
	args := c["args"].([]any)
	if args[0] != "--literal=${NOT_A_VAR}" || args[1] != "--port=8080" {
		t.Errorf("args = %v", args)
	}
	long := c["env"].([]any)[0].(map[string]any)["value"].(string)
	if !strings.HasSuffix(long, " 1.2.3 end") {
		t.Errorf("long value = %q", long)
	}
	if in.GetName() != orig.GetName() {
		t.Errorf("the input object was modified: %s", in.GetName())
	}
}

func TestSubstitute_Strict(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj(t, deployment),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\ndata: {a: '${APP_TAG}'}\n"),
		obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: '${NS_NAME}'}\n"),
	}
	_, err := Substitute(objs, map[string]string{"APP_TAG": "1.2.3"}, nil)
	if err == nil {
		t.Fatal("want an error for the unset REPLICAS and NS_NAME")
	}
	msg := err.Error()
	for _, want := range []string{`Deployment/apps/web-${ENV:=dev}: variable "REPLICAS" not set`, `Namespace/${NS_NAME}: variable "NS_NAME" not set`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "fine") {
		t.Errorf("error %q names an object that is fine", msg)
	}
}

func TestSubstitute_Disabled(t *testing.T) {
	o := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\n  annotations:\n    "+
		sluicev1beta1.GitSyncSubstituteAnnotation+": "+sluicev1beta1.GitSyncSubstituteDisabled+"\ndata:\n  run.sh: 'echo ${HOME} ${UNSET}'\n")
	out, err := Substitute([]*unstructured.Unstructured{o}, map[string]string{"HOME": "/nope"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Object["data"].(map[string]any)["run.sh"]; got != "echo ${HOME} ${UNSET}" {
		t.Errorf("run.sh = %q, want it untouched", got)
	}
	// Any other value of the annotation substitutes.
	o.SetAnnotations(map[string]string{sluicev1beta1.GitSyncSubstituteAnnotation: "enabled"})
	if _, err := Substitute([]*unstructured.Unstructured{o}, map[string]string{"HOME": "/h"}, nil); err == nil || !strings.Contains(err.Error(), `"UNSET"`) {
		t.Errorf("err = %v, want UNSET not set", err)
	}
}

func TestSubstitute_NoVariablesUnchanged(t *testing.T) {
	o := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: '$HOME'}\n")
	out, err := Substitute([]*unstructured.Unstructured{o}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != o {
		t.Error("an object without ${ was copied; want it as it is")
	}
}

func TestSubstitute_SecretRedactedFromYAMLError(t *testing.T) {
	// A value that breaks the YAML: the parse error may quote it.
	o := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: ${PASSWORD}\n")
	secret := "hunter2: [unclosed"
	_, err := Substitute([]*unstructured.Unstructured{o}, map[string]string{"PASSWORD": secret}, []string{secret})
	if err == nil {
		t.Fatal("want a YAML error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q holds the secret value", err)
	}
	if !strings.Contains(err.Error(), "ConfigMap/c") {
		t.Errorf("error %q does not name the object", err)
	}
}

func TestSubstitute_BadSyntaxNamesObject(t *testing.T) {
	o := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1}\ndata: {a: '${A-B}'}\n")
	_, err := Substitute([]*unstructured.Unstructured{o}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "ConfigMap/ns1/c: bad substitution") {
		t.Errorf("err = %v", err)
	}
}
