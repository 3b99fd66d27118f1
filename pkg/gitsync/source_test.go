package gitsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/revision"
)

// sourceDeploymentYAML is a Deployment with a label on its metadata only, so
// that a commit can change the object without changing its pod template.
func sourceDeploymentYAML(name, image, team string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {team: %[3]s}
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: %[2]s
          resources: {requests: {cpu: 100m, memory: 64Mi}}
`, name, image, team)
}

// commitTime is the committer time of a commit, as the annotation writes it.
func commitTime(r *repo, sha string) string {
	out := strings.TrimSpace(r.git("log", "-1", "--format=%cI", sha))
	t, err := time.Parse(time.RFC3339, out)
	if err != nil {
		r.t.Fatal(err)
	}
	return t.UTC().Format(time.RFC3339)
}

// wantSource checks the source annotations of an object against a commit
// and the content hash the engine computes for it.
func wantSource(g Gomega, obj metav1.Object, revision, commitTime, hash string) {
	a := obj.GetAnnotations()
	g.Expect(a).To(HaveKeyWithValue(sluicev1beta1.GitSyncRevisionAnnotation, revision), obj.GetName())
	g.Expect(a).To(HaveKeyWithValue(sluicev1beta1.GitSyncCommitTimeAnnotation, commitTime), obj.GetName())
	g.Expect(a).To(HaveKeyWithValue(sluicev1beta1.GitSyncContentHashAnnotation, hash), obj.GetName())
	applied, err := time.Parse(time.RFC3339, a[sluicev1beta1.GitSyncAppliedTimeAnnotation])
	g.Expect(err).NotTo(HaveOccurred(), obj.GetName())
	g.Expect(applied).To(BeTemporally("~", time.Now(), 5*time.Minute), obj.GetName())
}

// TestGitSync_SourceAnnotations: each commit annotates exactly the
// workloads and configs whose content it changed, with the revision, its
// commit time and the content hash the canary engine computes; a sync of
// the same revision writes nothing.
func TestGitSync_SourceAnnotations(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "source")
	sha1 := r.write("initial", map[string]string{
		"web.yaml":      sourceDeploymentYAML("web", "ghcr.io/example/web:1.0.0", "a"),
		"settings.yaml": configMapYAML("settings", "v1"),
		"other.yaml":    configMapYAML("other", "x"),
		"token.yaml":    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: s3cr3t\n",
	})
	c, _ := startManager(t, ns, nil)
	newGitSync(t, ns, "app", r.URL, private(ns), func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Interval = &metav1.Duration{Duration: time.Second}
	})
	rev1 := "main@sha1:" + sha1
	waitApplied(g, ns, "app", sha1)

	secret := func(g Gomega) *corev1.Secret {
		s := &corev1.Secret{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "token"}, s)).To(Succeed())
		g.Expect(s.Data).To(HaveKeyWithValue("token", []byte("s3cr3t")))
		return s
	}
	dep := func(g Gomega) *appsv1.Deployment {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		return d
	}
	// Created objects are annotated with the first revision.
	g.Eventually(func(g Gomega) {
		d := dep(g)
		wantSource(g, d, rev1, commitTime(r, sha1), revision.TemplateHash(&d.Spec.Template))
		cm := configMap(g, ns, "settings")
		wantSource(g, cm, rev1, commitTime(r, sha1), revision.ConfigMapChecksum(cm))
		cm = configMap(g, ns, "other")
		wantSource(g, cm, rev1, commitTime(r, sha1), revision.ConfigMapChecksum(cm))
		wantSource(g, secret(g), rev1, commitTime(r, sha1), revision.SecretChecksum(secret(g)))
	}, wait).Should(Succeed())
	// Under a field manager of their own, not GitSync's.
	g.Expect(managers(dep(g).ManagedFields, "f:gitsync.sluice.dev/revision")).To(ConsistOf(gitsync.SourceFieldManager))

	// A commit changes the image and a ConfigMap: only those two are annotated again.
	other, token := configMap(g, ns, "other").ResourceVersion, secret(g).ResourceVersion
	c.Writes()
	sha2 := r.write("v2", map[string]string{
		"web.yaml":      sourceDeploymentYAML("web", "ghcr.io/example/web:2.0.0", "a"),
		"settings.yaml": configMapYAML("settings", "v2"),
	})
	rev2 := "main@sha1:" + sha2
	waitApplied(g, ns, "app", sha2)
	g.Eventually(func(g Gomega) {
		d := dep(g)
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:2.0.0"))
		wantSource(g, d, rev2, commitTime(r, sha2), revision.TemplateHash(&d.Spec.Template))
		cm := configMap(g, ns, "settings")
		g.Expect(cm.Data["value"]).To(Equal("v2"))
		wantSource(g, cm, rev2, commitTime(r, sha2), revision.ConfigMapChecksum(cm))
	}, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "other").ResourceVersion).To(Equal(other), "an unchanged object was written")
	g.Expect(secret(g).ResourceVersion).To(Equal(token), "an unchanged object was written")
	g.Expect(sourceWrites(c.Writes(), ns)).To(ConsistOf("deployments/web", "configmaps/settings"))

	// Full syncs of the same revision (requested, so every object is
	// compared and applied again) write nothing.
	versions := func(g Gomega) []string {
		return []string{dep(g).ResourceVersion, configMap(g, ns, "settings").ResourceVersion,
			configMap(g, ns, "other").ResourceVersion, secret(g).ResourceVersion}
	}
	before := versions(g)
	c.Writes()
	for i := range 2 {
		syncAgain(g, ns, "app", fmt.Sprintf("idle-%d", i))
	}
	g.Expect(sourceWrites(c.Writes(), ns)).To(BeEmpty(), "a sync of the same revision wrote annotations")
	g.Expect(versions(g)).To(Equal(before), "a sync of the same revision wrote")

	// A later commit changes the other ConfigMap, and the Deployment's
	// labels but not its pod template: the Deployment keeps the revision
	// that brought its template, the first ConfigMap is not touched.
	settings := configMap(g, ns, "settings").ResourceVersion
	c.Writes()
	sha3 := r.write("v3", map[string]string{
		"web.yaml":   sourceDeploymentYAML("web", "ghcr.io/example/web:2.0.0", "b"),
		"other.yaml": configMapYAML("other", "y"),
	})
	waitApplied(g, ns, "app", sha3)
	g.Eventually(func(g Gomega) {
		cm := configMap(g, ns, "other")
		wantSource(g, cm, "main@sha1:"+sha3, commitTime(r, sha3), revision.ConfigMapChecksum(cm))
	}, wait).Should(Succeed())
	d := dep(g)
	g.Expect(d.Labels).To(HaveKeyWithValue("team", "b"))
	wantSource(g, d, rev2, commitTime(r, sha2), revision.TemplateHash(&d.Spec.Template))
	g.Expect(configMap(g, ns, "settings").ResourceVersion).To(Equal(settings))
	g.Expect(sourceWrites(c.Writes(), ns)).To(ConsistOf("configmaps/other"))
	// GitSync took none of it for drift.
	g.Expect(getGitSync(g, ns, "app").Status.LastFailureReason).To(BeEmpty())
	g.Expect(driftEvents(g, ns)).To(BeEmpty())
}

// syncAgain asks for a sync and waits until it is handled.
func syncAgain(g *WithT, ns, name, value string) {
	requestSync(g, ns, name, value)
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, name)
		g.Expect(gs.Status.LastHandledSyncRequest).To(Equal(value))
		g.Expect(gs.Status.LastFailureReason).To(BeEmpty())
	}, wait).Should(Succeed())
}

// sourceWrites are the objects ("<resource>/<name>") of ns that write
// requests of the source annotations' field manager went to.
func sourceWrites(writes []string, ns string) []string {
	var out []string
	for _, w := range writes {
		_, url, _ := strings.Cut(w, " ")
		path, query, _ := strings.Cut(url, "?")
		if !strings.Contains(query, "fieldManager="+gitsync.SourceFieldManager) {
			continue
		}
		parts := strings.Split(path, "/")
		if len(parts) < 2 || !strings.Contains(path, "/namespaces/"+ns+"/") {
			continue
		}
		out = append(out, parts[len(parts)-2]+"/"+parts[len(parts)-1])
	}
	return out
}

// managers are the field managers whose field set holds field.
func managers(entries []metav1.ManagedFieldsEntry, field string) []string {
	var out []string
	for _, e := range entries {
		if e.FieldsV1 != nil && strings.Contains(e.FieldsV1.GetRawString(), `"`+field+`"`) {
			out = append(out, e.Manager)
		}
	}
	return out
}
