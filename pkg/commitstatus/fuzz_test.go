package commitstatus

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHostReason(t *testing.T) {
	cases := map[string]string{
		`{"message":"Bad credentials","documentation_url":"https://docs.github.com"}`:                                                                            "Bad credentials",
		`{"message":"Validation Failed","errors":[{"resource":"Status","field":"description","message":"description is too long (maximum is 140 characters)"}]}`: "Validation Failed: description is too long (maximum is 140 characters)",
		`{"message":{"state":["is invalid"]}}`:                            `{"state":["is invalid"]}`,
		`{"type":"error","error":{"message":"Repository not found"}}`:     "Repository not found",
		`{"errors":[{"context":null,"message":"Authentication failed"}]}`: "Authentication failed",
		`{"error":"invalid_token"}`:                                       "invalid_token",
		"<html>\n  <body>502 Bad Gateway</body>\n</html>":                 "<html> <body>502 Bad Gateway</body> </html>",
		"": "",
	}
	for body, want := range cases {
		if got := hostReason([]byte(body)); got != want {
			t.Errorf("hostReason(%q) = %q, want %q", body, got, want)
		}
	}
}

// FuzzHostReason: any body gives a single line of at most maxReason bytes.
func FuzzHostReason(f *testing.F) {
	for _, s := range []string{`{"message":"x"}`, `{"message":{"a":["b"]}}`, `{"error":{"message":"y"}}`, `{"errors":[{"message":"z"}]}`, "plain\ntext", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := hostReason(body)
		if len(r) > maxReason || strings.ContainsAny(r, "\n\r\t") {
			t.Fatalf("hostReason gave %q", r)
		}
	})
}

// FuzzTruncate: the result fits, and a valid string stays valid.
func FuzzTruncate(f *testing.F) {
	f.Add("héllo wörld ✓✓✓", 8)
	f.Add(strings.Repeat("d", 300), 140)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 4 || n > 1024 {
			return
		}
		got := truncate(s, n)
		if len(got) > n {
			t.Fatalf("truncate(%q, %d) = %q is longer", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("truncate(%q, %d) = %q is not valid UTF-8", s, n, got)
		}
	})
}

// FuzzParseRepository: any input parses or errs, never panics, and never
// quotes itself (it may hold credentials) in the error.
func FuzzParseRepository(f *testing.F) {
	for _, s := range []string{"https://github.com/a/b.git", "git@github.com:a/b.git", "ssh://git@h:22/a/b", "https://dev.azure.com/o/p/_git/r", "https://u:secretpw@h/a/b", ":", "@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := ParseRepository(raw)
		if err != nil {
			if len(raw) > 8 && strings.Contains(err.Error(), raw) {
				t.Fatalf("the error quotes the URL: %v", err)
			}
			return
		}
		if r.Host == "" || r.Path == "" || r.Web == "" {
			t.Fatalf("ParseRepository(%q) = %+v", raw, r)
		}
	})
}
