package gitsync

import (
	"net/url"
	"strings"
)

// pushFields are the parts of a push event the receiver routes by: the
// pushed ref and the repository's URLs, from the payloads of GitHub (and
// Gitea, Forgejo, Gogs, which copy its shape) and GitLab:
//
//	GitHub: {"ref": "refs/heads/main", "repository": {"clone_url", "ssh_url", "html_url", "git_url", ...}}
//	GitLab: {"ref": "refs/heads/main", "project": {"git_http_url", "git_ssh_url", "web_url", ...},
//	         "repository": {"git_http_url", "git_ssh_url", "homepage", "url"}}
type pushFields struct {
	Ref  string
	URLs []string
}

// pushScanner is an io.Writer that picks the pushFields out of a JSON body
// while it streams past, with constant memory: the body is up to 8 MiB and
// is never held (see Receiver), and a body nested without end must not grow
// a stack. It tracks the container kinds of the first levels only and the
// depth beyond them, and captures only the strings it routes by, each
// bounded. A body that is not JSON yields no fields; the signature, checked
// beside it, decides whether the call is accepted at all.
type pushScanner struct {
	depth int
	// kinds are the container kinds ('{' or '[') of levels 1..len(kinds).
	kinds [scanLevels]byte
	// expectKey is true, per level, when the next string in an object is a key.
	expectKey [scanLevels]bool
	// key at level 1 and 2 (the object's current key).
	key [scanLevels]string

	inString, escaped bool
	// capturing: the current string is kept (a key of level 1 or 2, or a value we route by).
	capturing bool
	isKey     bool
	buf       []byte
	overflow  bool

	fields pushFields
}

// scanLevels is how many levels the scanner knows the kinds of; the fields
// sit at levels 1 and 2.
const scanLevels = 3

// maxCapture bounds a captured string (a ref or a URL).
const maxCapture = 2048

// repoKeys are the objects holding the repository's URLs, and urlKeys the URLs in them.
var (
	repoKeys = map[string]bool{"repository": true, "project": true}
	urlKeys  = map[string]bool{
		"clone_url": true, "ssh_url": true, "html_url": true, "git_url": true,
		"git_http_url": true, "git_ssh_url": true, "web_url": true, "http_url": true,
	}
)

// Write implements io.Writer; it never fails.
func (s *pushScanner) Write(p []byte) (int, error) {
	for _, c := range p {
		s.step(c)
	}
	return len(p), nil
}

func (s *pushScanner) step(c byte) {
	if s.inString {
		s.stringByte(c)
		return
	}
	switch c {
	case '{', '[':
		s.depth++
		if s.depth <= scanLevels {
			s.kinds[s.depth-1] = c
			s.expectKey[s.depth-1] = c == '{'
			s.key[s.depth-1] = ""
		}
	case '}', ']':
		if s.depth > 0 {
			s.depth--
		}
	case ',':
		if s.depth >= 1 && s.depth <= scanLevels && s.kinds[s.depth-1] == '{' {
			s.expectKey[s.depth-1] = true
		}
	case ':':
		if s.depth >= 1 && s.depth <= scanLevels {
			s.expectKey[s.depth-1] = false
		}
	case '"':
		s.inString, s.escaped, s.overflow = true, false, false
		s.buf = s.buf[:0]
		s.isKey = s.depth >= 1 && s.depth <= scanLevels && s.kinds[s.depth-1] == '{' && s.expectKey[s.depth-1]
		s.capturing = (s.isKey && s.depth <= 2) || s.wanted()
	}
}

// wanted is true when the string value about to be read is one we route by.
func (s *pushScanner) wanted() bool {
	switch s.depth {
	case 1:
		return s.kinds[0] == '{' && !s.expectKey[0] && s.key[0] == "ref"
	case 2:
		return s.kinds[0] == '{' && s.kinds[1] == '{' && !s.expectKey[1] && repoKeys[s.key[0]] && urlKeys[s.key[1]]
	}
	return false
}

func (s *pushScanner) stringByte(c byte) {
	if s.escaped {
		s.escaped = false
		switch c {
		case '"', '\\', '/':
			s.keep(c)
		default: // \n, \uXXXX...: never in a ref, a URL or a key we look for
			s.overflow = true
		}
		return
	}
	switch c {
	case '\\':
		s.escaped = true
	case '"':
		s.inString = false
		if !s.capturing {
			return
		}
		v := string(s.buf)
		if s.overflow {
			v = ""
		}
		switch {
		case s.isKey:
			s.key[s.depth-1] = v
		case s.depth == 1:
			s.fields.Ref = v
		case v != "":
			s.fields.URLs = append(s.fields.URLs, v)
		}
	default:
		s.keep(c)
	}
}

func (s *pushScanner) keep(c byte) {
	if !s.capturing || s.overflow {
		return
	}
	if len(s.buf) >= maxCapture || len(s.fields.URLs) >= 16 {
		s.overflow = true
		return
	}
	s.buf = append(s.buf, c)
}

// repoKey normalises a repository URL to "host/path" so that the forms a
// Git host names one repository by compare equal: https://host/org/repo(.git),
// ssh://git@host:22/org/repo.git, git@host:org/repo.git, git://host/org/repo.
// Host names are case-insensitive, ports and users are dropped (the same
// repository is served over HTTPS and SSH on different ports), paths are not.
func repoKey(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	var host, path string
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		host, path = u.Hostname(), u.Path
	} else if at, rest, ok := strings.Cut(raw, "@"); ok && !strings.Contains(at, "/") {
		// scp-like: git@host:org/repo.git
		h, p, ok := strings.Cut(rest, ":")
		if !ok {
			return ""
		}
		host, path = h, p
	} else {
		return ""
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	if host == "" || path == "" {
		return ""
	}
	return strings.ToLower(host) + "/" + path
}

// follows tells whether a GitSync following ref would see a push of pushed
// ("refs/heads/<branch>" or "refs/tags/<tag>"): a branch ref the same
// branch; a tag ref the same tag; a semver ref any tag (a new tag may be
// the highest in range). A commit ref never moves.
func follows(ref Ref, pushed string) bool {
	if b, ok := strings.CutPrefix(pushed, "refs/heads/"); ok {
		return ref.Kind == RefBranch && ref.Value == b
	}
	if t, ok := strings.CutPrefix(pushed, "refs/tags/"); ok {
		return (ref.Kind == RefTag && ref.Value == t) || ref.Kind == RefSemVer
	}
	return false
}
