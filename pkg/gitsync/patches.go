package gitsync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
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
// strategic merge patch without a target must find the object it names (in
// any namespace unless it names one), and a JSON 6902 operation must apply
// (e.g. "replace" needs an existing path). An error names the index of the
// patch that failed.
func Customize(objs []*unstructured.Unstructured, patches []sluicev1beta1.GitSyncPatch, images []sluicev1beta1.GitSyncImage) ([]*unstructured.Unstructured, error) {
	if len(patches) == 0 && len(images) == 0 {
		return objs, nil
	}
	// One entry may become several kustomize patches (one per document of
	// a strategic merge patch without a target): owner maps them back.
	var kPatches []types.Patch
	var owner []int
	for i, p := range patches {
		kps, err := kustomizePatches(objs, p)
		if err != nil {
			return nil, fmt.Errorf("spec.patches[%d]: %w", i, err)
		}
		for _, kp := range kps {
			kPatches = append(kPatches, kp)
			owner = append(owner, i)
		}
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
			return nil, fmt.Errorf("spec.patches[%d]: %w", owner[i], perr)
		}
	}
	return nil, fmt.Errorf("spec.images: %w", err)
}

// kustomizePatches checks what kustomize would report late or vaguely (a
// selector it cannot parse, a name that is not a regular expression) and
// converts the patch.
func kustomizePatches(objs []*unstructured.Unstructured, p sluicev1beta1.GitSyncPatch) ([]types.Patch, error) {
	t := p.Target
	if t == nil {
		return untargetedPatches(objs, p.Patch)
	}
	if _, err := labels.Parse(t.LabelSelector); err != nil {
		return nil, fmt.Errorf("target.labelSelector %q is not a selector: %w", t.LabelSelector, err)
	}
	if _, err := labels.Parse(t.AnnotationSelector); err != nil {
		return nil, fmt.Errorf("target.annotationSelector %q is not a selector: %w", t.AnnotationSelector, err)
	}
	// kustomize anchors both as ^...$ regular expressions.
	if _, err := regexp.Compile("^(?:" + t.Name + ")$"); err != nil {
		return nil, fmt.Errorf("target.name %q is not a regular expression: %w", t.Name, err)
	}
	if _, err := regexp.Compile("^(?:" + t.Namespace + ")$"); err != nil {
		return nil, fmt.Errorf("target.namespace %q is not a regular expression: %w", t.Namespace, err)
	}
	return []types.Patch{{Patch: p.Patch, Target: &types.Selector{
		ResId: resid.ResId{
			Gvk:       resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
			Name:      t.Name,
			Namespace: t.Namespace,
		},
		LabelSelector:      t.LabelSelector,
		AnnotationSelector: t.AnnotationSelector,
	}}}, nil
}

// untargetedPatches turns each document of a strategic merge patch without a
// target into a patch whose target is the object it names. kustomize alone
// would match the namespace exactly, and Flux adds its patches to the
// top-level kustomization, before that kustomization's namespace: a patch
// that names no namespace must still find "web" that an overlay put in
// "shop". So a document without a namespace patches the object of that
// kind and name in whichever namespace it was built into; one with a
// namespace, only that one. It must name at least one built object.
// Anything else (a JSON 6902 patch, text that does not parse, a document
// without a kind or name) is left to kustomize, which reports it.
func untargetedPatches(objs []*unstructured.Unstructured, text string) ([]types.Patch, error) {
	asIs := []types.Patch{{Patch: text}}
	if jsonPatchText.MatchString(text) {
		return asIs, nil
	}
	docs, err := decodeDocuments(text)
	if err != nil || len(docs) == 0 {
		return asIs, nil //nolint:nilerr // kustomize reports the parse error with the patch text.
	}
	out := make([]types.Patch, 0, len(docs))
	for _, d := range docs {
		u := &unstructured.Unstructured{Object: d}
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" || u.GetName() == "" {
			return asIs, nil
		}
		if !namesBuiltObject(objs, u) {
			where := ""
			if u.GetNamespace() != "" {
				where = " in namespace " + u.GetNamespace()
			}
			return nil, fmt.Errorf("the strategic merge patch names %s %s%s, which the build of spec.path does not hold: fix its apiVersion, kind or name, or give a target", gvk.Kind, u.GetName(), where)
		}
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("failed to encode the patch of %s %s: %w", gvk.Kind, u.GetName(), err)
		}
		out = append(out, types.Patch{Patch: string(b), Target: &types.Selector{ResId: resid.ResId{
			Gvk:       resid.Gvk{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Name:      regexp.QuoteMeta(u.GetName()),
			Namespace: regexp.QuoteMeta(u.GetNamespace()),
		}}})
	}
	return out, nil
}

// jsonPatchText tells a JSON 6902 patch (a list, in JSON or YAML, maybe after
// comments) from a strategic merge patch (an object); the CRD uses the same
// expression to ask for a target.
var jsonPatchText = regexp.MustCompile(`^(\s*#[^\n]*\n)*\s*(\[|-(\s|$))`)

// decodeDocuments decodes the YAML or JSON documents of a patch, skipping
// empty ones.
func decodeDocuments(text string) ([]map[string]any, error) {
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, fmt.Errorf("failed to decode the patch: %w", err)
		}
		if len(d) > 0 {
			docs = append(docs, d)
		}
	}
}

// namesBuiltObject tells whether a built object has the kind and name of
// the patch document, and its group, version and namespace when given.
func namesBuiltObject(objs []*unstructured.Unstructured, doc *unstructured.Unstructured) bool {
	want := doc.GroupVersionKind()
	for _, o := range objs {
		got := o.GroupVersionKind()
		if got.Kind != want.Kind || o.GetName() != doc.GetName() {
			continue
		}
		if (want.Group != "" && got.Group != want.Group) || (want.Version != "" && got.Version != want.Version) {
			continue
		}
		if doc.GetNamespace() != "" && o.GetNamespace() != doc.GetNamespace() {
			continue
		}
		return true
	}
	return false
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
