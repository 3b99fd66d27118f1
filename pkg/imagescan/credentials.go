package imagescan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// maxDockerConfig bounds the .dockerconfigjson read; the API server caps a
// Secret at 1 MiB anyway.
const maxDockerConfig = 1 << 20

// dockerHub is the key under which every Docker Hub alias is stored.
const dockerHub = "docker.io"

// dockerHubAliases are the host names docker treats as Docker Hub: a
// config written by `docker login` says https://index.docker.io/v1/, while
// go-containerregistry names the registry index.docker.io and users write
// docker.io.
var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// Credentials are the registry logins of a kubernetes.io/dockerconfigjson
// Secret. Its fields are unexported and it formats without them, so that
// printing a Request never shows a password.
type Credentials struct {
	// byHost maps a normalised host to its login.
	byHost map[string]login
}

type login struct {
	username, password, identityToken, registryToken string
}

// String lists the hosts, never the secrets.
func (c *Credentials) String() string {
	if c == nil {
		return "anonymous"
	}
	hosts := make([]string, 0, len(c.byHost))
	for h := range c.byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return "credentials for " + strings.Join(hosts, ", ")
}

// GoString is String, for %#v.
func (c *Credentials) GoString() string { return c.String() }

// CredentialsFromSecret reads the logins of a Secret of type
// kubernetes.io/dockerconfigjson (the type `kubectl create secret
// docker-registry` writes). Errors have reason InvalidCredentials and name
// the Secret, never its content.
func CredentialsFromSecret(s *corev1.Secret) (*Credentials, error) {
	if s == nil {
		return nil, nil
	}
	id := s.Namespace + "/" + s.Name
	if s.Type != corev1.SecretTypeDockerConfigJson {
		return nil, invalidCredentials("Secret %s is of type %q; it must be of type %s (kubectl create secret docker-registry)", id, s.Type, corev1.SecretTypeDockerConfigJson)
	}
	data, ok := s.Data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, invalidCredentials("Secret %s has no key %s", id, corev1.DockerConfigJsonKey)
	}
	c, err := ParseDockerConfigJSON(data)
	if err != nil {
		return nil, invalidCredentials("Secret %s: %v", id, err)
	}
	return c, nil
}

func invalidCredentials(format string, args ...any) error {
	return &Error{Reason: ReasonInvalidCredentials, text: fmt.Sprintf(format, args...)}
}

// dockerConfig is the documented shape of ~/.docker/config.json, which
// is also the content of .dockerconfigjson.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
}

// ParseDockerConfigJSON reads a docker config ({"auths": {host: login}}).
// Its errors name the host of a malformed entry, never a value.
func ParseDockerConfigJSON(data []byte) (*Credentials, error) {
	if len(data) > maxDockerConfig {
		return nil, fmt.Errorf("the docker config is %d bytes; the limit is %d", len(data), maxDockerConfig)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		// json's syntax errors quote no input, only offsets and types.
		return nil, fmt.Errorf("the docker config is not valid JSON of the form {\"auths\": {\"host\": {...}}}: %w", err)
	}
	// Keys are visited in order so that, when two keys name the same host
	// (docker.io and https://index.docker.io/v1/), the choice is stable:
	// the key that is exactly the host wins, else the first in order.
	keys := make([]string, 0, len(cfg.Auths))
	for k := range cfg.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c := &Credentials{byHost: map[string]login{}}
	exact := map[string]bool{}
	for _, k := range keys {
		e := cfg.Auths[k]
		l := login{username: e.Username, password: e.Password, identityToken: e.IdentityToken, registryToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
			if err != nil {
				return nil, fmt.Errorf("the auth of %q is not base64", k)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("the auth of %q is not base64 of user:password", k)
			}
			l.username, l.password = user, pass
		}
		h := normalizeHost(k)
		if h == "" {
			return nil, fmt.Errorf("the key %q names no registry host", k)
		}
		isExact := k == h
		if _, seen := c.byHost[h]; seen && (exact[h] || !isExact) {
			continue
		}
		c.byHost[h], exact[h] = l, isExact
	}
	return c, nil
}

// normalizeHost reduces a config key or a registry name to the host[:port]
// docker compares (docker's ConvertToHostname): no scheme, no path, lower
// case, and every Docker Hub alias as docker.io.
func normalizeHost(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(s)
	if dockerHubAliases[s] {
		return dockerHub
	}
	return s
}

// authenticator returns the login for registry host (as
// go-containerregistry names it), or anonymous when there is none.
func (c *Credentials) authenticator(host string) authn.Authenticator {
	if c == nil {
		return authn.Anonymous
	}
	l, ok := c.byHost[normalizeHost(host)]
	if !ok {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      l.username,
		Password:      l.password,
		IdentityToken: l.identityToken,
		RegistryToken: l.registryToken,
	})
}

// secrets lists every secret value, and the base64 forms a header would
// carry, for redaction.
func (c *Credentials) secrets() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, l := range c.byHost {
		for _, s := range []string{l.password, l.identityToken, l.registryToken} {
			if s != "" {
				out = append(out, s)
			}
		}
		if l.password != "" {
			out = append(out, base64.StdEncoding.EncodeToString([]byte(l.username+":"+l.password)))
		}
	}
	return out
}
