package gitsync_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

// configMapWrites are the write requests of writes to the ConfigMaps of ns,
// by ConfigMap name (applies and their dry runs alike).
func configMapWrites(writes []string, ns string) map[string]int {
	out := map[string]int{}
	prefix := "/api/v1/namespaces/" + ns + "/configmaps/"
	for _, w := range writes {
		_, path, _ := strings.Cut(w, " ")
		path, _, _ = strings.Cut(path, "?")
		if name, ok := strings.CutPrefix(path, prefix); ok {
			out[name]++
		}
	}
	return out
}

// waitApplied waits until the GitSync ns/name is Ready at sha.
func waitApplied(g *WithT, ns, name, sha string) {
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, name)
		g.Expect(gs.Status.LastAppliedRevision).To(HaveSuffix(sha))
		c := ready(g, ns, name)
		g.Expect(c).NotTo(BeNil())
		g.Expect(string(c.Status)).To(Equal("True"), c.Message)
	}, wait, 50*time.Millisecond).Should(Succeed())
}

// TestGitSync_DriftWatch_NewRevisionSendsOnlyWhatChanged: once the watches
// are trusted, a commit that changes one object of twelve sends that one
// (and a new one) and nothing else; a commit that removes one prunes it and
// sends nothing; a sync request at the same revision compares everything.
func TestGitSync_DriftWatch_NewRevisionSendsOnlyWhatChanged(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	c, _ := startManager(t, ns, nil)
	r := newGitServer(t, "", "").newRepo(t, "incremental")
	files := map[string]string{}
	for i := range 12 {
		files[fmt.Sprintf("cm-%d.yaml", i)] = configMapYAML(fmt.Sprintf("cm-%d", i), "v1")
	}
	r.write("twelve ConfigMaps", files)
	newGitSync(t, ns, "app", r.URL, private(ns))
	waitReady(g, ns, "app")
	waitWatching(g, c, "configmaps")

	// A commit changes cm-3 and adds cm-new: only they are sent.
	c.Writes()
	sha := r.write("cm-3 v2, cm-new", map[string]string{
		"cm-3.yaml":   configMapYAML("cm-3", "v2"),
		"cm-new.yaml": configMapYAML("cm-new", "v1"),
	})
	requestSync(g, ns, "app", "after-"+sha[:7])
	waitApplied(g, ns, "app", sha)
	g.Expect(configMap(g, ns, "cm-3").Data["value"]).To(Equal("v2"))
	g.Expect(configMap(g, ns, "cm-new").Data["value"]).To(Equal("v1"))
	sent := configMapWrites(c.Writes(), ns)
	g.Expect(sent).To(HaveKey("cm-3"))
	g.Expect(sent).To(HaveKey("cm-new"))
	g.Expect(sent).To(HaveLen(2), "objects that did not change in Git were sent: %v", sent)
	g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(HaveLen(13))

	// A commit removes cm-7: it is pruned, nothing is sent.
	sha = r.remove("retire cm-7", "cm-7.yaml")
	requestSync(g, ns, "app", "after-"+sha[:7])
	waitApplied(g, ns, "app", sha)
	absent(t.Context(), g, &corev1.ConfigMap{}, ns, "cm-7")
	sent = configMapWrites(c.Writes(), ns)
	g.Expect(sent).To(Equal(map[string]int{"cm-7": sent["cm-7"]}), "only the pruned object is written: %v", sent)
	g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(HaveLen(12))

	// A sync request at the same revision compares everything again.
	requestSync(g, ns, "app", "full")
	g.Eventually(func(g Gomega) {
		g.Expect(getGitSync(g, ns, "app").Status.LastHandledSyncRequest).To(Equal("full"))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(configMapWrites(c.Writes(), ns)).To(HaveLen(12), "a sync request did not compare every object")
	g.Expect(getGitSync(g, ns, "app").Status.LastFailureReason).To(BeEmpty())
}
