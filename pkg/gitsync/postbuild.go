package gitsync

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync/postbuild"
)

// ReasonSubstituteFailed is the reason when spec.postBuild could not be applied: a ConfigMap
// or Secret of variables is missing, or a variable is unset.
const ReasonSubstituteFailed = "SubstituteFailed"

// postBuild runs spec.postBuild on the built objects. A missing ConfigMap or
// Secret is transient (it may be created next); a bad or unset variable in
// Git stalls until Git or the spec change.
func (r *GitSyncReconciler) postBuild(ctx context.Context, gs *sluicev1beta1.GitSync, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if gs.Spec.PostBuild == nil {
		return objs, nil
	}
	vars, secrets, err := r.variables(ctx, gs.Namespace, gs.Spec.PostBuild)
	if err != nil {
		return nil, fail(ReasonSubstituteFailed, false, err)
	}
	out, err := postbuild.Substitute(objs, vars, secrets)
	if err != nil {
		return nil, fail(ReasonSubstituteFailed, true, fmt.Errorf("postBuild substitution failed: %w", err))
	}
	return out, nil
}

// variables reads spec.postBuild.substituteFrom in order, then
// spec.postBuild.substitute, each overriding the earlier ones, as in Flux.
// Newlines are removed from the values of ConfigMaps and Secrets, as Flux
// does (a value read from a file often ends with one). It returns the values
// read from Secrets so that errors can hide them.
func (r *GitSyncReconciler) variables(ctx context.Context, ns string, pb *sluicev1beta1.GitSyncPostBuild) (map[string]string, []string, error) {
	vars := map[string]string{}
	var secrets []string
	for _, ref := range pb.SubstituteFrom {
		data, err := r.readVariables(ctx, ns, ref)
		if err != nil {
			return nil, nil, err
		}
		for k, v := range data {
			if !postbuild.ValidName(k) {
				return nil, nil, fmt.Errorf("%s %s: key %q is not a variable name (a letter or _, then letters, digits or _)", ref.Kind, ref.Name, k)
			}
			v = strings.ReplaceAll(v, "\n", "")
			vars[k] = v
			if ref.Kind == "Secret" {
				secrets = append(secrets, v)
			}
		}
	}
	for k, v := range pb.Substitute {
		vars[k] = v
	}
	return vars, secrets, nil
}

// readVariables reads one ConfigMap or Secret with the API reader: they are
// not cached, and a Secret's values never leave the returned map.
func (r *GitSyncReconciler) readVariables(ctx context.Context, ns string, ref sluicev1beta1.GitSyncSubstituteReference) (map[string]string, error) {
	key := types.NamespacedName{Namespace: ns, Name: ref.Name}
	var obj client.Object
	switch ref.Kind {
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Secret":
		obj = &corev1.Secret{}
	default:
		return nil, fmt.Errorf("spec.postBuild.substituteFrom: kind %q is neither ConfigMap nor Secret", ref.Kind)
	}
	if err := r.APIReader.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			if ref.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("spec.postBuild.substituteFrom: %s %s/%s not found (create it, or mark it optional): %w", ref.Kind, ns, ref.Name, err)
		}
		return nil, fmt.Errorf("spec.postBuild.substituteFrom: failed to read %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
	}
	out := map[string]string{}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		for k, v := range o.Data {
			out[k] = v
		}
	case *corev1.Secret:
		for k, v := range o.Data {
			out[k] = string(v)
		}
	}
	return out, nil
}
