package promotion_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/promotion"
)

// A write that cannot be made leaves nothing in Git and says why, in the
// stage and in the conditions, without a secret; it is tried again.
func TestReconciler_WriteFailures(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(f *fixture, p *sluicev1beta1.Pipeline)
		reason  string
		message string
		stalled bool
	}{
		{
			name:    "no kustomization in the path",
			mutate:  func(_ *fixture, p *sluicev1beta1.Pipeline) { p.Spec.Stages[0].Git.Path = "deploy/missing" },
			reason:  sluicev1beta1.PipelineReasonSetterNotFound,
			message: "deploy/missing",
			stalled: true,
		},
		{
			name: "no setter marker",
			mutate: func(_ *fixture, p *sluicev1beta1.Pipeline) {
				p.Spec.Stages[0].Git.Change = sluicev1beta1.GitChangeSetters
			},
			reason:  sluicev1beta1.PipelineReasonSetterNotFound,
			message: `"$promotion": "web:web"`,
			stalled: true,
		},
		{
			name: "GitSync of another namespace",
			mutate: func(f *fixture, p *sluicev1beta1.Pipeline) {
				p.Spec.Stages[0].Git.GitSyncRef.Namespace = "default"
			},
			reason:  promotion.ReasonInvalidGitTarget,
			message: "another namespace",
		},
		{
			name:    "GitSync not found",
			mutate:  func(_ *fixture, p *sluicev1beta1.Pipeline) { p.Spec.Stages[0].Git.GitSyncRef.Name = "nope" },
			reason:  promotion.ReasonInvalidGitTarget,
			message: "GitSync",
		},
		{
			name: "wrong password",
			mutate: func(f *fixture, p *sluicev1beta1.Pipeline) {
				f.g.Expect(f.env.Client.Create(f.ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "wrong"},
					Data:       map[string][]byte{"username": []byte(gitUser), "password": []byte("not-" + gitPassword)},
				})).To(Succeed())
				p.Spec.Stages[0].Git = sluicev1beta1.PipelineGit{URL: f.repo.URL, Path: "deploy/staging",
					SecretRef: &corev1.LocalObjectReference{Name: "wrong"}}
			},
			reason:  sluicev1beta1.PipelineReasonGitUnreachable,
			message: "authentication",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			g := f.g
			f.pipeline(func(p *sluicev1beta1.Pipeline) {
				p.Spec.Sources[0].Interval = &metav1.Duration{Duration: time.Hour} // the retry comes before the next scan
				tc.mutate(f, p)
			})
			f.push("1.1.0")
			start := f.head()
			t0 := time.Now().UTC().Truncate(time.Second)
			res := f.reconcile(f.r, t0)
			g.Expect(res.RequeueAfter).To(And(BeNumerically(">=", promotion.DefaultPollInterval), BeNumerically("<=", promotion.DefaultPollInterval*11/10)),
				"a failed write is tried again, at the jittered poll interval")

			g.Expect(f.head()).To(Equal(start), "nothing is written")
			p := f.get()
			staging := stageOf(p, "staging")
			g.Expect(staging.State).To(Equal(sluicev1beta1.StagePending))
			g.Expect(staging.Commit).To(BeEmpty())
			g.Expect(staging.Reason).To(Equal(tc.reason))
			g.Expect(staging.Message).To(ContainSubstring(tc.message))
			ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(tc.reason))
			g.Expect(apimeta.IsStatusConditionTrue(p.Status.Conditions, "Stalled")).To(Equal(tc.stalled))
			g.Eventually(func() []string { return f.eventReasons() }, 10*time.Second, 100*time.Millisecond).Should(ContainElement(tc.reason))

			// Tried again on the next reconcile, with the same outcome.
			f.reconcile(f.r, t0.Add(time.Minute))
			g.Expect(f.head()).To(Equal(start))
			g.Expect(stageOf(f.get(), "staging").Reason).To(Equal(tc.reason))
			f.expectNoSecret(false)
		})
	}
}

// A stage with change: Setters sets the fields marked for
// <pipeline>:<source>, each in its form, and nothing else.
func TestReconciler_Setters(t *testing.T) {
	f := newFixture(t)
	g := f.g
	_, err := f.repo.Write("marked fields", map[string]string{
		"deploy/staging/deployment.yaml": "spec:\n  template:\n    spec:\n      containers:\n" +
			"        - name: web\n          image: " + f.image + ":1.0.0 # {\"$promotion\": \"web:web\"}\n" +
			"        - name: sidecar\n          image: busybox:1.36\n",
		"deploy/staging/values.yaml": "image:\n  tag: 1.0.0 # {\"$promotion\": \"web:web:tag\"}\n  digest: \"\" # {\"$promotion\": \"web:web:digest\"}\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	f.pipeline(func(p *sluicev1beta1.Pipeline) { p.Spec.Stages[0].Git.Change = sluicev1beta1.GitChangeSetters })
	digest := f.push("1.1.0")
	f.reconcile(f.r, time.Now().UTC())
	g.Expect(stageOf(f.get(), "staging").Commit).To(Equal(f.head()))
	g.Expect(f.git("show", "main:deploy/staging/deployment.yaml")).To(And(
		ContainSubstring("image: "+f.image+":1.1.0@"+digest+" # {\"$promotion\": \"web:web\"}"),
		ContainSubstring("image: busybox:1.36"),
	))
	g.Expect(f.git("show", "main:deploy/staging/values.yaml")).To(And(
		ContainSubstring("tag: 1.1.0 #"), ContainSubstring(`digest: "`+digest+`" #`), // the quoting style is kept
	))
	g.Expect(f.git("show", "main:deploy/staging/kustomization.yaml")).To(ContainSubstring("newTag: 1.0.0"))
}
