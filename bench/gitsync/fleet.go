package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// receiverSecret is the name of the Secret holding the receiver's token.
const receiverSecret = "gitsync-receiver"

// fleet is one shape of the benchmark: n GitSyncs of k objects each, all
// following branch main of one repository, GitSync i in namespace
// <prefix>-<i> with path apps/<prefix>-<i>. A namespace each keeps a push
// to one GitSync's receiver from requesting a sync of the others (the
// receiver routes a push to every GitSync of the namespace that follows the
// repository).
type fleet struct {
	prefix   string
	n, k     int
	interval time.Duration
	repo     *testenv.GitRepo
	token    []byte
}

// gsName is the name of every GitSync (each in its own namespace).
const gsName = "app"

func (f *fleet) namespace(i int) string { return fmt.Sprintf("%s-%03d", f.prefix, i) }
func (f *fleet) dir(i int) string       { return "apps/" + f.namespace(i) }

// key is GitSync i.
func (f *fleet) key(i int) client.ObjectKey {
	return client.ObjectKey{Namespace: f.namespace(i), Name: gsName}
}

// objectName is object j of a GitSync: a ConfigMap, a Service or a
// Deployment, in turn, so that every shape applies a mix of the three.
func objectName(j int) (kind, name string) {
	switch j % 3 {
	case 0:
		return "ConfigMap", fmt.Sprintf("config-%04d", j)
	case 1:
		return "Service", fmt.Sprintf("svc-%04d", j)
	}
	return "Deployment", fmt.Sprintf("app-%04d", j)
}

// manifest is object j of namespace ns; value is the ConfigMap's data (the
// only field the benchmark changes through Git).
func manifest(ns string, j int, value string) string {
	kind, name := objectName(j)
	switch kind {
	case "ConfigMap":
		return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
data:
  value: %q
`, name, ns, value)
	case "Service":
		return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    app: %s
  ports:
  - name: http
    port: 80
    targetPort: 8080
`, name, ns, name)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        app: %s
    spec:
      containers:
      - name: app
        image: example.com/app:1
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 10m
            memory: 16Mi
`, name, ns, name, name)
}

// files are the repository's files of GitSync i, one per object.
func (f *fleet) files(i int, value string) map[string]string {
	out := make(map[string]string, f.k)
	for j := range f.k {
		kind, name := objectName(j)
		out[path.Join(f.dir(i), strings.ToLower(kind)+"-"+name+".yaml")] = manifest(f.namespace(i), j, value)
	}
	return out
}

// write commits the first revision of every GitSync's directory.
func (f *fleet) write() (string, error) {
	all := map[string]string{}
	for i := range f.n {
		for p, c := range f.files(i, "v1") {
			all[p] = c
		}
	}
	return f.repo.Write("first revision", all)
}

// changeConfig commits a new value of GitSync i's first ConfigMap.
func (f *fleet) changeConfig(i int, value string) (string, error) {
	kind, name := objectName(0)
	p := path.Join(f.dir(i), strings.ToLower(kind)+"-"+name+".yaml")
	return f.repo.Write("change "+name+" of "+f.namespace(i), map[string]string{p: manifest(f.namespace(i), 0, value)})
}

// gitSync is GitSync i; the first has the push receiver on.
func (f *fleet) gitSync(i int) *sluicev1beta1.GitSync {
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: gsName, Namespace: f.namespace(i)},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      f.repo.URL,
			Ref:      &sluicev1beta1.GitRef{Branch: "main"},
			Path:     f.dir(i),
			Interval: &metav1.Duration{Duration: f.interval},
		},
	}
	if i == 0 {
		gs.Spec.Receiver = &sluicev1beta1.GitSyncReceiver{SecretRef: corev1.LocalObjectReference{Name: receiverSecret}}
	}
	return gs
}

// createNamespaces creates every namespace and the receiver Secret, before
// the clock of the first apply starts.
func (f *fleet) createNamespaces(ctx context.Context, c client.Client, workers int) error {
	if err := parallel(ctx, f.n, workers, func(i int) error {
		return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace(i)}})
	}); err != nil {
		return fmt.Errorf("failed to create the namespaces: %w", err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: receiverSecret, Namespace: f.namespace(0)},
		Data:       map[string][]byte{"token": f.token},
	}
	if err := c.Create(ctx, s); err != nil {
		return fmt.Errorf("failed to create the receiver Secret: %w", err)
	}
	return nil
}

// createGitSyncs creates every GitSync.
func (f *fleet) createGitSyncs(ctx context.Context, c client.Client, workers int) error {
	if err := parallel(ctx, f.n, workers, func(i int) error { return c.Create(ctx, f.gitSync(i)) }); err != nil {
		return fmt.Errorf("failed to create the GitSyncs: %w", err)
	}
	return nil
}

// parallel runs fn(0) … fn(n-1) on workers goroutines and joins the errors.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	next := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
