package gitsync_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const substitutedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {env: "${ENV}"}
spec:
  replicas: ${REPLICAS:=2}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/example/web:${APP_TAG}
          args: ["--greeting=$${NOT_SUBSTITUTED}"]
`

const untouchedConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  annotations: {gitsync.sluice.dev/substitute: disabled}
data:
  run.sh: echo ${HOME} ${UNSET}
`

func createObject(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func getDeployment(g Gomega, ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d
}

// TestGitSync_PostBuild substitutes from a ConfigMap, a Secret (later wins)
// and spec.postBuild.substitute (wins over both), with a default.
func TestGitSync_PostBuild(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	vars := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vars"},
		Data:       map[string]string{"APP_TAG": "1.0.0", "REPLICAS": "4", "ENV": "from-configmap"},
	}
	createObject(t, vars)
	// A value written from a file ends with a newline: it is removed, as in Flux.
	createObject(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secret-vars"},
		Data:       map[string][]byte{"APP_TAG": []byte("1.1.0\n")},
	})
	r := newGitServer(t, "", "").newRepo(t, "postbuild")
	sha := r.write("initial", map[string]string{
		"deployment.yaml": substitutedDeployment,
		"script.yaml":     untouchedConfigMap,
	})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.PostBuild = &sluicev1beta1.GitSyncPostBuild{
			Substitute: map[string]string{"ENV": "prod"},
			SubstituteFrom: []sluicev1beta1.GitSyncSubstituteReference{
				{Kind: "ConfigMap", Name: "vars"},
				{Kind: "Secret", Name: "secret-vars"},
				{Kind: "ConfigMap", Name: "absent", Optional: true},
			},
		}
	})

	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	g.Expect(getGitSync(g, ns, "app").Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	d := getDeployment(g, ns, "web")
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:1.1.0"))
	g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(Equal([]string{"--greeting=${NOT_SUBSTITUTED}"}))
	g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(4))
	g.Expect(d.Labels).To(HaveKeyWithValue("env", "prod"))
	g.Expect(configMap(g, ns, "script").Data["run.sh"]).To(Equal("echo ${HOME} ${UNSET}"))

	// Without REPLICAS, the default applies at the next sync.
	delete(vars.Data, "REPLICAS")
	g.Expect(env.Client.Update(ctx, vars)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(*getDeployment(g, ns, "web").Spec.Replicas).To(BeEquivalentTo(2))
	}, wait).Should(Succeed())
}

// TestGitSync_PostBuildUnsetVariable: a commit with an unset variable fails,
// names it and its object, and applies and prunes nothing.
func TestGitSync_PostBuildUnsetVariable(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	createObject(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secret-vars"},
		Data:       map[string][]byte{"APP_TAG": []byte("s3cr3t-tag")},
	})
	r := newGitServer(t, "", "").newRepo(t, "unset")
	good := r.write("initial", map[string]string{
		"deployment.yaml": substitutedDeployment,
		"settings.yaml":   configMapYAML("settings", "v1"),
	})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.PostBuild = &sluicev1beta1.GitSyncPostBuild{
			Substitute:     map[string]string{"ENV": "prod"},
			SubstituteFrom: []sluicev1beta1.GitSyncSubstituteReference{{Kind: "Secret", Name: "secret-vars"}},
		}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(HaveLen(2))

	// The deployment goes (a prune, if it were applied) and settings gets an unset variable.
	r.remove("remove the deployment", "deployment.yaml")
	bad := r.write("unset variable", map[string]string{"settings.yaml": configMapYAML("settings", "${MISSING_VAR}")})
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAttemptedRevision).To(Equal("main@sha1:" + bad))
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("SubstituteFailed"))
		g.Expect(c.Message).To(ContainSubstring(`ConfigMap/settings: variable "MISSING_VAR" not set`))
		g.Expect(gs.Status.LastFailureReason).To(Equal("SubstituteFailed"))
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + good))
		g.Expect(gs.Status.Inventory).To(HaveLen(2))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "app").Message)
	g.Consistently(func(g Gomega) {
		g.Expect(getDeployment(g, ns, "web").Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":s3cr3t-tag"))
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.Inventory).To(HaveLen(2))
		g.Expect(gs.Status.LastFailureMessage).NotTo(ContainSubstring("s3cr3t"))
	}, 3*time.Second).Should(Succeed())
}

// TestGitSync_PostBuildMissingConfigMap: a missing non-optional ConfigMap
// fails with a reason that names it, and nothing is applied; so does a key
// that is not a variable name.
func TestGitSync_PostBuildMissingConfigMap(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "missing")
	r.write("initial", map[string]string{"settings.yaml": configMapYAML("settings", "${X:=x}")})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.PostBuild = &sluicev1beta1.GitSyncPostBuild{
			SubstituteFrom: []sluicev1beta1.GitSyncSubstituteReference{{Kind: "ConfigMap", Name: "cluster-vars"}},
		}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("SubstituteFailed"))
		g.Expect(c.Message).To(ContainSubstring("ConfigMap " + ns + "/cluster-vars not found"))
	}, wait).Should(Succeed())
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
	g.Expect(err).To(HaveOccurred())
	g.Expect(strings.Contains(err.Error(), "not found")).To(BeTrue(), err.Error())

	// Created, the next sync uses it.
	createObject(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cluster-vars"},
		Data:       map[string]string{"X": "from-cluster"},
	})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("from-cluster"))
	}, wait).Should(Succeed())

	// A key that is not a variable name fails, as in Flux, and is named.
	cm := configMap(g, ns, "cluster-vars")
	cm.Data["not-a-var"] = "v"
	g.Expect(env.Client.Update(context.Background(), cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Reason).To(Equal("SubstituteFailed"))
		g.Expect(c.Message).To(ContainSubstring(`ConfigMap cluster-vars: key "not-a-var" is not a variable name`))
	}, wait).Should(Succeed())
}
