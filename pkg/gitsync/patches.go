package gitsync

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// customizeDir is where Customize lays out the built objects and its
// kustomization in memory.
const customizeDir = "/customize"

// Customize applies spec.patches in order, then spec.images, to the built
// objects, with kustomize, as Flux's Kustomization does with the same fields.
// The targets match the objects as built from Git (after the kustomization's
// own namePrefix or namespace), before spec.targetNamespace and postBuild.
//
// As in Flux, a target that selects no object is not an error, but a
// strategic merge patch without a target must find the object it names, and
// a JSON 6902 operation must apply (e.g. "replace" needs an existing path).
// An error names the index of the patch that failed.
func Customize(objs []*unstructured.Unstructured, patches []sluicev1beta1.GitSyncPatch, images []sluicev1beta1.GitSyncImage) ([]*unstructured.Unstructured, error) {
	if len(patches) == 0 && len(images) == 0 {
		return objs, nil
	}
	kPatches := make([]types.Patch, 0, len(patches))
	for i, p := range patches {
		kp, err := kustomizePatch(p)
		if err != nil {
			return nil, fmt.Errorf("spec.patches[%d]: %w", i, err)
		}
		kPatches = append(kPatches, kp)
	}
	kImages := make([]types.Image, 0, len(images))
	for _, im := range images {
		kImages = append(kImages, types.Image{Name: im.Name, NewName: im.NewName, NewTag: im.NewTag, Digest: im.Digest})
	}
	resources, err := encodeObjects(objs)
	if err != nil {
		return nil, err
	}
	out, err := runCustomize(resources, kPatches, kImages)
	if err == nil {
		return out, nil
	}
	// kustomize reports the patch text, not its index: find the first patch
	// that fails on its own prefix of the list. This runs only on failure.
	for i := range kPatches {
		if _, perr := runCustomize(resources, kPatches[:i+1], nil); perr != nil {
			return nil, fmt.Errorf("spec.patches[%d]: %w", i, perr)
		}
	}
	return nil, fmt.Errorf("spec.images: %w", err)
}

// kustomizePatch checks what kustomize would report late or vaguely (a
// selector it cannot parse, a name that is not a regular expression) and
// converts the patch.
func kustomizePatch(p sluicev1beta1.GitSyncPatch) (types.Patch, error) {
	kp := types.Patch{Patch: p.Patch}
	t := p.Target
	if t == nil {
		return kp, nil
	}
	if _, err := labels.Parse(t.LabelSelector); err != nil {
		return kp, fmt.Errorf("target.labelSelector %q is not a selector: %w", t.LabelSelector, err)
	}
	if _, err := labels.Parse(t.AnnotationSelector); err != nil {
		return kp, fmt.Errorf("target.annotationSelector %q is not a selector: %w", t.AnnotationSelector, err)
	}
	// kustomize anchors both as ^...$ regular expressions.
	if _, err := regexp.Compile("^(?:" + t.Name + ")$"); err != nil {
		return kp, fmt.Errorf("target.name %q is not a regular expression: %w", t.Name, err)
	}
	if _, err := regexp.Compile("^(?:" + t.Namespace + ")$"); err != nil {
		return kp, fmt.Errorf("target.namespace %q is not a regular expression: %w", t.Namespace, err)
	}
	kp.Target = &types.Selector{
		ResId: resid.ResId{
			Gvk:       resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
			Name:      t.Name,
			Namespace: t.Namespace,
		},
		LabelSelector:      t.LabelSelector,
		AnnotationSelector: t.AnnotationSelector,
	}
	return kp, nil
}

func encodeObjects(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("failed to encode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// runCustomize builds a kustomization of the built objects, the patches and
// the images in memory, with the options of Build: no plugins, no exec, no
// file outside its directory (the patches are inline, so nothing else is read).
func runCustomize(resources []byte, patches []types.Patch, images []types.Image) ([]*unstructured.Unstructured, error) {
	mem := filesys.MakeFsInMemory()
	if err := mem.MkdirAll(customizeDir); err != nil {
		return nil, fmt.Errorf("failed to lay out the patches: %w", err)
	}
	k := types.Kustomization{
		TypeMeta: types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Patches:  patches,
		Images:   images,
	}
	if len(resources) > 0 {
		k.Resources = []string{"resources.yaml"}
		if err := mem.WriteFile(customizeDir+"/resources.yaml", resources); err != nil {
			return nil, fmt.Errorf("failed to lay out the patches: %w", err)
		}
	}
	kb, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("failed to write the patches' kustomization: %w", err)
	}
	if err := mem.WriteFile(customizeDir+"/kustomization.yaml", kb); err != nil {
		return nil, fmt.Errorf("failed to lay out the patches: %w", err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	rm, err := krusty.MakeKustomizer(opts).Run(mem, customizeDir)
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("failed to render the patched objects: %w", err)
	}
	objs, err := utils.ReadObjects(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("failed to decode the patched objects: %w", err)
	}
	return objs, nil
}
