package helm

import (
	"fmt"
	"slices"
	"sort"

	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The hook events and delete policies GitSync acts on, as Helm spells them.
const (
	EventPreInstall  = string(release.HookPreInstall)
	EventPostInstall = string(release.HookPostInstall)
	EventPreUpgrade  = string(release.HookPreUpgrade)
	EventPostUpgrade = string(release.HookPostUpgrade)
	EventTest        = string(release.HookTest)
	EventPreDelete   = string(release.HookPreDelete)
	EventPostDelete  = string(release.HookPostDelete)

	PolicyBeforeHookCreation = string(release.HookBeforeHookCreation)
	PolicySucceeded          = string(release.HookSucceeded)
	PolicyFailed             = string(release.HookFailed)
)

// runEvents are the events whose hooks GitSync runs (the delete hooks when
// the GitSync is deleted); the others (rollback hooks) are counted in
// Result.SkippedHooks.
var runEvents = []string{EventPreInstall, EventPostInstall, EventPreUpgrade, EventPostUpgrade, EventTest, EventPreDelete, EventPostDelete}

// Hook is a rendered hook manifest.
type Hook struct {
	// Object is the hook's manifest (one object).
	Object *unstructured.Unstructured
	// Path is the template it came from, for messages.
	Path string
	// Events are its helm.sh/hook events.
	Events []string
	// Weight is helm.sh/hook-weight.
	Weight int
	// DeletePolicies are helm.sh/hook-delete-policy, before-hook-creation
	// when the annotation is absent (as Helm).
	DeletePolicies []string
}

// Has tells whether the hook fires on event.
func (h Hook) Has(event string) bool { return slices.Contains(h.Events, event) }

// HasPolicy tells whether the hook has the delete policy p.
func (h Hook) HasPolicy(p string) bool { return slices.Contains(h.DeletePolicies, p) }

// ForEvent returns the hooks of event in the order Helm runs them: Helm's
// kind order (SortManifests), then by weight and name, stable.
func ForEvent(hooks []Hook, event string) []Hook {
	var out []Hook
	for _, h := range hooks {
		if h.Has(event) {
			out = append(out, h)
		}
	}
	// Helm's action.hookByWeight, which the SDK does not export.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Weight == out[j].Weight {
			return out[i].Object.GetName() < out[j].Object.GetName()
		}
		return out[i].Weight < out[j].Weight
	})
	return out
}

// hooksOf decodes the hooks that releaseutil.SortManifests took apart and
// counts those of events GitSync does not run.
func hooksOf(hs []*release.Hook, namespace string) ([]Hook, int, error) {
	out := make([]Hook, 0, len(hs))
	skipped := 0
	for _, h := range hs {
		objs, err := decode(h.Manifest)
		if err != nil {
			return nil, 0, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		if len(objs) != 1 {
			return nil, 0, fmt.Errorf("hook %s: %d objects in one hook document", h.Path, len(objs))
		}
		hook := Hook{Object: objs[0], Path: h.Path, Weight: h.Weight}
		for _, e := range h.Events {
			hook.Events = append(hook.Events, string(e))
		}
		for _, p := range h.DeletePolicies {
			hook.DeletePolicies = append(hook.DeletePolicies, string(p))
		}
		if len(hook.DeletePolicies) == 0 {
			hook.DeletePolicies = []string{PolicyBeforeHookCreation}
		}
		if hook.Object.GetNamespace() == "" {
			hook.Object.SetNamespace(namespace)
		}
		if !slices.ContainsFunc(hook.Events, func(e string) bool { return slices.Contains(runEvents, e) }) {
			skipped++
			continue
		}
		out = append(out, hook)
	}
	return out, skipped, nil
}
