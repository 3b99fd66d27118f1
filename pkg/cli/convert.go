package cli

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// maxManifestSize bounds one input file or stdin.
const maxManifestSize = 32 << 20

type convertOptions struct {
	*Options
	write  bool
	strict bool
}

func newConvertCommand(o *Options) *cobra.Command {
	co := &convertOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "convert FILE|DIR|- ...",
		Short: "Rewrite Flagger manifests (flagger.app/v1beta1) to Sluice (sluice.dev/v1beta1)",
		Long: `convert rewrites the Canaries, MetricTemplates and AlertProviders of
flagger.app/v1beta1 found in files, directories (every .yaml and .yml file,
recursively) or stdin (-) to sluice.dev/v1beta1. Only the apiVersion (and
Flagger's deprecated spec.canaryAnalysis key) changes: comments, order,
quoting and every other document are kept byte for byte.

The converted manifests go to stdout (files separated by ---), or back into
the files with --write. Anything Sluice treats differently is reported on
stderr as file:line: warning|note: ...; a warning means Sluice rejects the
object or cannot do what it asks. --strict exits 1 when there is a warning.`,
		Example: `  kubectl sluice convert canary.yaml > canary.sluice.yaml
  kubectl sluice convert --write ./deploy
  helm template . | kubectl sluice convert - | kubectl apply -f -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("convert needs at least one FILE, DIR, or - for stdin")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return co.run(args)
		},
	}
	cmd.Flags().BoolVarP(&co.write, "write", "w", false, "Rewrite the files in place instead of printing (not with -)")
	cmd.Flags().BoolVar(&co.strict, "strict", false, "Exit 1 when a warning is reported")
	return cmd
}

// input is one manifest stream to convert.
type input struct {
	name string
	path string // "" for stdin
	mode fs.FileMode
	data []byte
}

func (co *convertOptions) run(args []string) error {
	inputs, err := co.inputs(args)
	if err != nil {
		return err
	}
	converted, warnings, notes, actions := 0, 0, 0, 0
	first := true
	for _, in := range inputs {
		res, err := ConvertFlagger(in.name, in.data)
		if err != nil {
			return err
		}
		for _, f := range res.Findings {
			fmt.Fprintln(co.Streams.ErrOut, f.String())
			switch f.Severity {
			case SeverityWarning:
				warnings++
			case SeverityAction:
				actions++
			default:
				notes++
			}
		}
		converted += res.Converted
		if co.write {
			if res.Converted == 0 || bytes.Equal(res.Output, in.data) {
				continue
			}
			if err := os.WriteFile(in.path, res.Output, in.mode.Perm()); err != nil {
				return fmt.Errorf("failed to write %s: %w", in.path, err)
			}
			continue
		}
		if !first {
			fmt.Fprintln(co.Streams.Out, "---")
		}
		first = false
		out := res.Output
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		if _, err := co.Streams.Out.Write(out); err != nil {
			return fmt.Errorf("failed to write the output: %w", err)
		}
	}
	summary := fmt.Sprintf("converted %d Flagger object(s) in %d input(s): %d warning(s), %d note(s)", converted, len(inputs), warnings, notes)
	if actions > 0 { // printed only when there are, so older summaries read the same
		summary += fmt.Sprintf(", %d action(s) for the operator", actions)
	}
	fmt.Fprintln(co.Streams.ErrOut, summary)
	if co.strict && warnings > 0 {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d warning(s) reported (--strict)", warnings)}
	}
	return nil
}

// inputs reads the arguments: files, directories (walked for .yaml and
// .yml, in lexical order) and - (stdin, once).
func (co *convertOptions) inputs(args []string) ([]input, error) {
	var out []input
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			if co.write {
				return nil, fmt.Errorf("--write cannot rewrite stdin (-): give file or directory paths")
			}
			if stdin {
				return nil, fmt.Errorf("stdin (-) can be given only once")
			}
			stdin = true
			data, err := readBounded(co.Streams.In, "stdin")
			if err != nil {
				return nil, err
			}
			out = append(out, input{name: "stdin", data: data})
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", arg, err)
		}
		if !info.IsDir() {
			in, err := readFile(arg, info.Mode())
			if err != nil {
				return nil, err
			}
			out = append(out, in)
			continue
		}
		n := len(out)
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			in, err := readFile(p, fi.Mode())
			if err != nil {
				return err
			}
			out = append(out, in)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to walk %s: %w", arg, err)
		}
		if len(out) == n {
			fmt.Fprintf(co.Streams.ErrOut, "%s: no .yaml or .yml file found\n", arg)
		}
	}
	return out, nil
}

func readFile(p string, mode fs.FileMode) (input, error) {
	f, err := os.Open(p)
	if err != nil {
		return input{}, fmt.Errorf("cannot read %s: %w", p, err)
	}
	defer f.Close()
	data, err := readBounded(f, p)
	if err != nil {
		return input{}, err
	}
	return input{name: p, path: p, mode: mode, data: data}, nil
}

// readBounded reads at most maxManifestSize bytes, and fails beyond.
func readBounded(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("%s is larger than %d MiB: split it", name, maxManifestSize>>20)
	}
	return data, nil
}
