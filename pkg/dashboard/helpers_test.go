package dashboard_test

import (
	"net/http/cookiejar"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newJar() (*cookiejar.Jar, error) { return cookiejar.New(nil) }

func clientKey(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }
