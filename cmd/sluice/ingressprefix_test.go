package main

import (
	"context"
	"flag"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	nginxrouter "github.com/sluice-cd/sluice/pkg/router/nginx"
)

// --ingress-annotations-prefix defaults to ingress-nginx's prefix, refuses
// what cannot start an annotation key, and reaches the nginx router: the
// canary Ingress it writes on the real API server carries the canary
// annotations under the prefix given.
func TestOptions_IngressAnnotationsPrefix(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	g.Expect(o.IngressPrefix).To(Equal("nginx.ingress.kubernetes.io"), "Flagger's and ingress-nginx's default")

	for value, wantErr := range map[string]string{
		"":                      "--ingress-annotations-prefix must not be empty",
		"Nginx.Example":         `--ingress-annotations-prefix must be the --annotations-prefix of ingress-nginx, a DNS subdomain such as nginx.ingress.kubernetes.io, not "Nginx.Example"`,
		"custom/nginx":          `not "custom/nginx"`,
		"-custom.example.com":   `not "-custom.example.com"`,
		"nginx.ingress.k8s.io/": `not "nginx.ingress.k8s.io/"`,
	} {
		o := DefaultOptions()
		o.IngressPrefix = value
		g.Expect(o.Validate()).To(MatchError(ContainSubstring(wantErr)), value)
	}

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{"--ingress-annotations-prefix=custom.nginx.example.com"})).To(Succeed())
	g.Expect(o.Validate()).To(Succeed())

	routers, err := newRouters(o)
	g.Expect(err).NotTo(HaveOccurred())
	rt, err := routers.New(nginxrouter.Name, env.Client)
	g.Expect(err).NotTo(HaveOccurred())

	ctx := context.Background()
	ns, err := env.Namespace(ctx, "ingress-prefix")
	g.Expect(err).NotTo(HaveOccurred())
	pathType := networkingv1.PathTypePrefix
	g.Expect(env.Client.Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr("nginx"), Rules: []networkingv1.IngressRule{{Host: "app.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "app", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}},
	})).To(Succeed())
	c := &sluicev1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, UID: "00000000-0000-0000-0000-000000000020"},
		Spec: sluicev1beta1.CanarySpec{
			Provider:   nginxrouter.Name,
			TargetRef:  sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
			IngressRef: &sluicev1beta1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "app"},
			Service:    sluicev1beta1.CanaryService{Port: 80},
			Analysis:   &sluicev1beta1.CanaryAnalysis{StepWeight: 10},
		}}
	g.Expect(rt.Reconcile(ctx, c)).To(Succeed())
	ing := &networkingv1.Ingress{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-canary"}, ing)).To(Succeed())
	g.Expect(ing.Annotations).To(Equal(map[string]string{
		"custom.nginx.example.com/canary": "true", "custom.nginx.example.com/canary-weight": "0"}))
}
