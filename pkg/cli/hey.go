package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// splitCommandLine splits a command line into words as sh would for a
// simple command, without running a shell: blanks separate words, single
// quotes keep everything, double quotes keep everything but \" \\ \$ \`,
// and a backslash outside quotes escapes the next character. Anything that
// needs a shell to mean what it says (pipes, redirections, lists,
// substitutions, variables, comments) is an error: such a line cannot be
// turned into a task that runs no shell.
func splitCommandLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			flush()
		case r == '\'':
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i = j
		case r == '"':
			inWord = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				switch rs[j] {
				case '$', '`':
					return nil, fmt.Errorf("%q inside double quotes needs a shell", rs[j])
				case '\\':
					if j+1 < len(rs) && strings.ContainsRune("\"\\$`\n", rs[j+1]) {
						j++
						if rs[j] != '\n' {
							cur.WriteRune(rs[j])
						}
						continue
					}
				}
				cur.WriteRune(rs[j])
			}
			if j == len(rs) {
				return nil, errors.New("unterminated double quote")
			}
			i = j
		case r == '\\':
			if i+1 == len(rs) {
				return nil, errors.New("a backslash ends the line")
			}
			i++
			if rs[i] != '\n' { // a line continuation
				inWord = true
				cur.WriteRune(rs[i])
			}
		case strings.ContainsRune("|&;<>()$`", r), r == '#' && !inWord:
			return nil, fmt.Errorf("%q needs a shell", r)
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	flush()
	return words, nil
}

// heyLoad is what a hey command line asks for, in the terms of the load
// tester's http-load task.
type heyLoad struct {
	URL         string
	Method      string
	Headers     map[string]string
	Body        string
	Rate        int           // requests per second, all workers together; 0: not limited
	Concurrency int           // workers
	Duration    time.Duration // 0: bounded by Requests instead
	Requests    int           // -n, used when Duration is 0
	Timeout     time.Duration // 0: hey's -t 0, no timeout
	// Notes say where the http-load task differs from what hey did.
	Notes []string
}

// hey's defaults (github.com/rakyll/hey, hey.go).
const (
	heyDefaultRequests    = 200
	heyDefaultConcurrency = 50
	heyDefaultTimeout     = 20 * time.Second
)

// heyHeader is hey's own check of -H values.
var heyHeader = regexp.MustCompile(`^([\w-]+):\s*(.+)`)

// heyBoolFlags take no value.
var heyBoolFlags = map[string]bool{"h2": true, "disable-compression": true, "disable-keepalive": true, "disable-redirects": true}

// heyValueFlags take one value.
var heyValueFlags = map[string]bool{"n": true, "c": true, "q": true, "z": true, "o": true, "m": true, "H": true, "t": true,
	"A": true, "d": true, "D": true, "T": true, "a": true, "x": true, "host": true, "cpus": true}

// isHey tells whether argv runs hey (by name or path).
func isHey(argv []string) bool {
	return len(argv) > 0 && path.Base(argv[0]) == "hey"
}

// parseHey reads hey's arguments (argv without "hey") as hey's Go flag set
// does: -f v, -f=v, --f v; flags end at "--" or the first argument that is
// not one, which must be the only one: the URL.
func parseHey(args []string) (*heyLoad, error) {
	l := &heyLoad{Method: "GET", Concurrency: heyDefaultConcurrency, Requests: heyDefaultRequests, Timeout: heyDefaultTimeout, Headers: map[string]string{}}
	var qps float64
	var positional []string
	rest := args
	for len(rest) > 0 {
		a := rest[0]
		if a == "--" {
			positional = rest[1:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = rest
			break
		}
		rest = rest[1:]
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		switch {
		case heyBoolFlags[name]:
			if hasValue {
				if _, err := strconv.ParseBool(value); err != nil {
					return nil, fmt.Errorf("-%s takes true or false, not %q", name, value)
				}
			}
			l.Notes = append(l.Notes, boolFlagNote(name))
			continue
		case !heyValueFlags[name]:
			return nil, fmt.Errorf("hey has no flag -%s", name)
		}
		if !hasValue {
			if len(rest) == 0 {
				return nil, fmt.Errorf("-%s needs a value", name)
			}
			value, rest = rest[0], rest[1:]
		}
		if err := l.set(name, value, &qps); err != nil {
			return nil, err
		}
	}
	if len(positional) != 1 {
		return nil, fmt.Errorf("hey takes exactly one URL after its flags, found %d argument(s)", len(positional))
	}
	u, err := url.Parse(positional[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", positional[0])
	}
	l.URL = u.String()
	if qps > 0 {
		// hey's -q limits each worker: the load is -q × -c per second.
		total := qps * float64(l.Concurrency)
		l.Rate = max(int(math.Round(total)), 1)
		if float64(l.Rate) != total {
			l.Notes = append(l.Notes, fmt.Sprintf("rate %g/s (-q %g × -c %d) rounded to %d/s", total, qps, l.Concurrency, l.Rate))
		}
	}
	return l, nil
}

// set applies one of hey's value flags.
func (l *heyLoad) set(name, value string, qps *float64) error {
	positive := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("-%s must be a positive integer, not %q", name, value)
		}
		return n, nil
	}
	var err error
	switch name {
	case "n":
		l.Requests, err = positive()
	case "c":
		l.Concurrency, err = positive()
	case "q":
		*qps, err = strconv.ParseFloat(value, 64)
		if err != nil || *qps < 0 || math.IsInf(*qps, 0) || math.IsNaN(*qps) {
			return fmt.Errorf("-q must be a number of requests per second, not %q", value)
		}
	case "z":
		l.Duration, err = time.ParseDuration(value)
		if err != nil || l.Duration <= 0 {
			return fmt.Errorf("-z must be a positive duration such as 1m, not %q", value)
		}
	case "t":
		n, aerr := strconv.Atoi(value)
		if aerr != nil || n < 0 {
			return fmt.Errorf("-t must be a number of seconds, not %q", value)
		}
		l.Timeout = time.Duration(n) * time.Second
	case "m":
		l.Method = strings.ToUpper(value)
	case "H":
		m := heyHeader.FindStringSubmatch(value)
		if m == nil {
			return fmt.Errorf("-H %q is not a header (Name: value)", value)
		}
		l.Headers[m[1]] = m[2]
	case "A":
		l.Headers["Accept"] = value
	case "T":
		l.Headers["Content-Type"] = value
	case "host":
		l.Headers["Host"] = value
	case "a":
		if !strings.Contains(value, ":") {
			return fmt.Errorf("-a must be user:password")
		}
		l.Headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(value))
	case "d":
		l.Body = value
	case "D":
		return errors.New("-D reads the body from a file on the load tester's pod, which http-load cannot: put the body in -d")
	case "x":
		return errors.New("-x (an HTTP proxy) has no http-load equivalent")
	case "o":
		l.Notes = append(l.Notes, "-o (hey's output format) dropped: http-load reports its results in its response and metrics")
	case "cpus":
		l.Notes = append(l.Notes, "-cpus dropped")
	}
	return err
}

func boolFlagNote(name string) string {
	switch name {
	case "disable-redirects":
		return "-disable-redirects dropped: http-load never follows redirects"
	case "h2":
		return "-h2 dropped: http-load negotiates HTTP/2 over TLS by itself"
	default:
		return "-" + name + " dropped: http-load has no such setting"
	}
}
