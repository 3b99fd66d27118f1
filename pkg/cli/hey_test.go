package cli

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// TestSplitCommandLine: words are split as sh splits a simple command;
// what needs a shell is refused with the reason.
func TestSplitCommandLine(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{name: "blanks", in: " hey  -z 1m\t-c 2 \n http://a/ ", want: []string{"hey", "-z", "1m", "-c", "2", "http://a/"}},
		{name: "single quotes keep everything", in: `hey -H 'X-A: "b" \n $c' u`, want: []string{"hey", "-H", `X-A: "b" \n $c`, "u"}},
		{name: "double quotes", in: `hey -d "{\"a\": 1}" u`, want: []string{"hey", "-d", `{"a": 1}`, "u"}},
		{name: "double quotes keep other backslashes", in: `a "x\ny"`, want: []string{"a", `x\ny`}},
		{name: "backslash escapes", in: `a b\ c \'d`, want: []string{"a", "b c", "'d"}},
		{name: "line continuation", in: "a \\\nb", want: []string{"a", "b"}},
		{name: "adjacent quotes join", in: `a 'b'"c"d`, want: []string{"a", "bcd"}},
		{name: "empty argument", in: `a '' ""`, want: []string{"a", "", ""}},
		{name: "ampersand", in: `hey http://a/?x=1&`, wantErr: `'&' needs a shell`},
		{name: "query string", in: `hey http://a/?x=[1]*`, want: []string{"hey", "http://a/?x=[1]*"}},
		{name: "hash inside a word", in: `a b#c`, want: []string{"a", "b#c"}},
		{name: "comment", in: `a #c`, wantErr: `'#' needs a shell`},
		{name: "pipe", in: `curl u | grep x`, wantErr: `'|' needs a shell`},
		{name: "list", in: `a; b`, wantErr: `';' needs a shell`},
		{name: "redirection", in: `a > f`, wantErr: `'>' needs a shell`},
		{name: "variable", in: `a $HOME`, wantErr: `'$' needs a shell`},
		{name: "substitution in double quotes", in: `a "$(b)"`, wantErr: `'$' inside double quotes needs a shell`},
		{name: "backtick", in: "a `b`", wantErr: "'`' needs a shell"},
		{name: "unterminated single", in: `a 'b`, wantErr: "unterminated single quote"},
		{name: "unterminated double", in: `a "b`, wantErr: "unterminated double quote"},
		{name: "trailing backslash", in: `a \`, wantErr: "a backslash ends the line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := splitCommandLine(tt.in)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// TestParseHey: each of hey's flags, in each of the Go flag package's forms.
func TestParseHey(t *testing.T) {
	base := func(mutate func(*heyLoad)) *heyLoad {
		l := &heyLoad{URL: "http://app.test:9898/", Method: "GET", Concurrency: 50, Requests: 200, Timeout: 20 * time.Second, Headers: map[string]string{}}
		if mutate != nil {
			mutate(l)
		}
		return l
	}
	tests := []struct {
		name    string
		args    []string
		want    *heyLoad
		wantErr string
	}{
		{name: "defaults", args: []string{"http://app.test:9898/"}, want: base(nil)},
		{name: "-z", args: []string{"-z", "1m", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Duration = time.Minute })},
		{name: "-z=", args: []string{"-z=90s", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Duration = 90 * time.Second })},
		{name: "--z", args: []string{"--z", "2m", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Duration = 2 * time.Minute })},
		{name: "-q × -c", args: []string{"-q", "10", "-c", "2", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Rate, l.Concurrency = 20, 2 })},
		{name: "-q after -c order free", args: []string{"-c", "3", "-q", "0.5", "http://app.test:9898/"}, want: base(func(l *heyLoad) {
			l.Rate, l.Concurrency = 2, 3
			l.Notes = []string{"rate 1.5/s (-q 0.5 × -c 3) rounded to 2/s"}
		})},
		{name: "-n", args: []string{"-n", "1000", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Requests = 1000 })},
		{name: "-m", args: []string{"-m", "post", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Method = "POST" })},
		{name: "-H repeated", args: []string{"-H", "X-A: 1", "-H", "X-B:two words", "http://app.test:9898/"}, want: base(func(l *heyLoad) {
			l.Headers = map[string]string{"X-A": "1", "X-B": "two words"}
		})},
		{name: "-A -T -host", args: []string{"-A", "application/json", "-T", "text/plain", "-host", "app.example.com", "http://app.test:9898/"}, want: base(func(l *heyLoad) {
			l.Headers = map[string]string{"Accept": "application/json", "Content-Type": "text/plain", "Host": "app.example.com"}
		})},
		{name: "-a", args: []string{"-a", "u:p", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Headers = map[string]string{"Authorization": "Basic dTpw"} })},
		{name: "-d", args: []string{"-d", `{"a":1}`, "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Body = `{"a":1}` })},
		{name: "-t", args: []string{"-t", "5", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Timeout = 5 * time.Second })},
		{name: "-t 0", args: []string{"-t", "0", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Timeout = 0 })},
		{name: "-o and -cpus dropped", args: []string{"-o", "csv", "-cpus", "2", "http://app.test:9898/"}, want: base(func(l *heyLoad) {
			l.Notes = []string{"-o (hey's output format) dropped: http-load reports its results in its response and metrics", "-cpus dropped"}
		})},
		{name: "bool flags", args: []string{"-disable-keepalive", "-h2=true", "-disable-redirects", "http://app.test:9898/"}, want: base(func(l *heyLoad) {
			l.Notes = []string{"-disable-keepalive dropped: http-load has no such setting", "-h2 dropped: http-load negotiates HTTP/2 over TLS by itself", "-disable-redirects dropped: http-load never follows redirects"}
		})},
		{name: "-- ends flags", args: []string{"-c", "1", "--", "http://app.test:9898/"}, want: base(func(l *heyLoad) { l.Concurrency = 1 })},
		{name: "flags end at the URL", args: []string{"http://app.test:9898/", "-z", "1m"}, wantErr: "hey takes exactly one URL after its flags, found 3 argument(s)"},
		{name: "no URL", args: []string{"-z", "1m"}, wantErr: "hey takes exactly one URL after its flags, found 0 argument(s)"},
		{name: "relative URL", args: []string{"app.test"}, wantErr: `"app.test" is not an absolute http(s) URL`},
		{name: "unknown flag", args: []string{"-k", "u"}, wantErr: "hey has no flag -k"},
		{name: "missing value", args: []string{"-z"}, wantErr: "-z needs a value"},
		{name: "bad -z", args: []string{"-z", "1", "u"}, wantErr: `-z must be a positive duration such as 1m, not "1"`},
		{name: "bad -c", args: []string{"-c", "0", "u"}, wantErr: `-c must be a positive integer, not "0"`},
		{name: "bad -n", args: []string{"-n", "x", "u"}, wantErr: `-n must be a positive integer, not "x"`},
		{name: "bad -q", args: []string{"-q", "-1", "u"}, wantErr: `-q must be a number of requests per second, not "-1"`},
		{name: "bad -t", args: []string{"-t", "1s", "u"}, wantErr: `-t must be a number of seconds, not "1s"`},
		{name: "bad -H", args: []string{"-H", "nocolon", "u"}, wantErr: `-H "nocolon" is not a header (Name: value)`},
		{name: "bad -a", args: []string{"-a", "user", "u"}, wantErr: "-a must be user:password"},
		{name: "bad bool", args: []string{"-h2=maybe", "u"}, wantErr: `-h2 takes true or false, not "maybe"`},
		{name: "-D", args: []string{"-D", "/body.json", "u"}, wantErr: "-D reads the body from a file on the load tester's pod, which http-load cannot: put the body in -d"},
		{name: "-x", args: []string{"-x", "http://proxy:3128", "u"}, wantErr: "-x (an HTTP proxy) has no http-load equivalent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := parseHey(tt.args)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// TestHTTPLoadFields: defaults filled where hey had none, the duration
// spanning the analysis, and timeouts within http-load's bounds.
func TestHTTPLoadFields(t *testing.T) {
	g := NewWithT(t)
	l, err := parseHey([]string{"-n", "100", "-c", "4", "-t", "0", "-m", "PUT", "-H", "A: b", "-d", "x", "http://a.test/"})
	g.Expect(err).NotTo(HaveOccurred())
	fields, notes := httpLoadFields(l, 0)
	g.Expect(fields).To(Equal([][2]string{
		{"url", "http://a.test/"}, {"rate", "10"}, {"duration", "10s"}, {"concurrency", "4"},
		{"method", "PUT"}, {"headers", `{"A":"b"}`}, {"body", "x"}, {"timeout", "1m"},
	}))
	g.Expect(notes).To(ConsistOf(
		"-n 100 at 10/s is a 10s run",
		"hey -t 0 (no timeout) became 1m, http-load's longest",
		"hey without -q sends as fast as it can; http-load needs a rate: 10/s set, adjust it",
	))

	l, err = parseHey([]string{"-z", "1m", "-q", "100", "-c", "200", "-t", "90", "http://a.test/"})
	g.Expect(err).NotTo(HaveOccurred())
	fields, notes = httpLoadFields(l, 3*time.Hour)
	g.Expect(fields).To(ContainElements([2]string{"duration", "1h"}, [2]string{"rate", "20000"}, [2]string{"timeout", "1m"}))
	g.Expect(notes).To(ContainElements(
		"duration 1h (hey's 1m) spans the analysis: Flagger started hey again at each step, http-load runs once per revision",
		"concurrency 200 exceeds the load tester's default --max-concurrency (100)",
		"rate 20000 exceeds the load tester's default --max-rate (1000)",
		"timeout 1m30s cut to 1m, http-load's longest",
	))
}
