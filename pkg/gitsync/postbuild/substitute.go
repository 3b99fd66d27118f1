package postbuild

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// maxErrors bounds the objects named in one error.
const maxErrors = 10

// Substitute returns the objects with their variables substituted: each
// object is encoded to YAML, expanded, and decoded again, so that
// `replicas: ${REPLICAS}` becomes an integer. Objects annotated
// gitsync.sluice.dev/substitute: disabled are returned untouched. The
// input objects are not modified. Every error names the object; the values
// in secrets are redacted from the errors (they are never in the input
// text, but a YAML error after substitution could quote one).
func Substitute(objs []*unstructured.Unstructured, vars map[string]string, secrets []string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	var errs []error
	for _, o := range objs {
		if o.GetAnnotations()[sluicev1beta1.GitSyncSubstituteAnnotation] == sluicev1beta1.GitSyncSubstituteDisabled {
			out = append(out, o)
			continue
		}
		n, err := substituteOne(o, vars)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", describe(o), err))
			if len(errs) == maxErrors {
				break
			}
			continue
		}
		out = append(out, n)
	}
	if len(errs) > 0 {
		return nil, &redactedError{err: errors.Join(errs...), secrets: secrets}
	}
	return out, nil
}

func substituteOne(o *unstructured.Unstructured, vars map[string]string) (*unstructured.Unstructured, error) {
	data, err := yaml.Marshal(o.Object)
	if err != nil {
		return nil, fmt.Errorf("failed to encode to YAML: %w", err)
	}
	expanded, err := Expand(string(data), vars)
	if err != nil {
		return nil, err
	}
	if expanded == string(data) {
		return o, nil
	}
	// Through JSON and the unstructured decoder, as the build does, so
	// that numbers are int64 rather than float64.
	j, err := yaml.YAMLToJSON([]byte(expanded))
	if err != nil {
		return nil, fmt.Errorf("not valid YAML after substitution (a value may need quotes around its ${var}): %w", err)
	}
	n := &unstructured.Unstructured{}
	if err := n.UnmarshalJSON(j); err != nil {
		return nil, fmt.Errorf("not a valid object after substitution: %w", err)
	}
	if n.GetKind() == "" || n.GetName() == "" {
		return nil, errors.New("the substitution emptied the kind or the name")
	}
	return n, nil
}

func describe(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return fmt.Sprintf("%s/%s", o.GetKind(), o.GetName())
	}
	return fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// redactedError hides the secret values in an error's message.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// Unwrap is deliberately absent: callers that print the wrapped error would
// bypass the redaction.
