package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

const root = "../../.."

var engineDir = filepath.Join(root, "adapters/internal/engine")

// Issue 21: a generated file that no longer matches the engine's source
// (an option added or its doc changed without `go generate`) fails here.
func TestGeneratedFilesAreFresh(t *testing.T) {
	for _, a := range slices.Sorted(maps.Keys(Adapters)) {
		t.Run(a, func(t *testing.T) {
			want, err := generate(engineDir, a)
			if err != nil {
				t.Fatal(err)
			}
			// As go generate would write it: to a file, then compared.
			tmp := filepath.Join(t.TempDir(), outFile)
			if err := os.WriteFile(tmp, want, 0o644); err != nil {
				t.Fatal(err)
			}
			fresh, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(root, "adapters", a, outFile)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fresh) {
				t.Errorf("%s is stale (run go generate ./adapters/...): %s", path, firstDiff(got, fresh))
			}
		})
	}
}

// An option added to the engine appears in every adapter, with its doc and
// its default, after regenerating.
func TestANewEngineOptionIsExportedWithItsDoc(t *testing.T) {
	dir := t.TempDir()
	ents, err := os.ReadDir(engineDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			b, err := os.ReadFile(filepath.Join(engineDir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "options.go" {
				b = append(b, []byte(`
// DefaultFrobs is how many frobs there are by default.
const DefaultFrobs = 3

// WithFrobs sets the number of frobs. Default 3; at least 1.
func WithFrobs(n int, d time.Duration) Option { return func(*Options) {} }
`)...)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for a := range Adapters {
		src, err := generate(dir, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"// WithFrobs sets the number of frobs. Default 3; at least 1.\n" +
				"func WithFrobs(n int, d time.Duration) Option { return engine.WithFrobs(n, d) }\n",
			"\t// DefaultFrobs is how many frobs there are by default.\n\tDefaultFrobs = engine.DefaultFrobs\n",
		} {
			if !bytes.Contains(src, []byte(want)) {
				t.Errorf("%s: the generated file lacks\n%s", a, want)
			}
		}
	}
}

// Issue 21: `go doc` on an adapter shows a doc comment of its own for every
// exported identifier (function, method, type, struct field, constant and
// variable), starting with its name. A grouped constant or variable needs
// its own comment (a group's comment alone is what `go doc` printed for the
// old re-exported options: nothing about the option).
func TestEveryExportedIdentifierHasItsOwnDoc(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(root, "adapters", "*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return filepath.Base(d) == "internal" })
	if _, err := os.Stat(filepath.Join(root, "kafkatest")); err == nil {
		dirs = append(dirs, filepath.Join(root, "kafkatest"))
	}
	if len(dirs) < 4 {
		t.Fatalf("found only %v", dirs)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			for _, problem := range undocumented(t, dir) {
				t.Error(problem)
			}
		})
	}
}

// The check itself finds what it must: an undocumented function, field and
// grouped constant, and a doc that does not start with the name.
func TestUndocumentedFindsTheMissingDocs(t *testing.T) {
	dir := t.TempDir()
	src := `// Package p is a package.
package p

// F does.
func F() {}

func G() {}

// T is a type.
type T struct {
	// A is documented.
	A int
	B int
	c int
}

// Options, grouped.
var (
	// WithA is documented.
	WithA = 1
	WithB = 2
)

// Something else.
func H() {}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := undocumented(t, dir)
	want := []string{"func G: no doc comment", "field T.B: no doc comment",
		"WithB: no doc comment of its own", `func H: doc does not start with "H"`}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func undocumented(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "example.com/"+filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if p.Doc == "" {
		out = append(out, "package: no doc comment")
	}
	named := func(what, name, d string) {
		switch {
		case strings.TrimSpace(d) == "":
			out = append(out, fmt.Sprintf("%s %s: no doc comment", what, name))
		case !startsWith(d, name):
			out = append(out, fmt.Sprintf("%s %s: doc does not start with %q", what, name, name))
		}
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			for _, s := range v.Decl.Specs {
				vs := s.(*ast.ValueSpec)
				for _, n := range vs.Names {
					if !n.IsExported() {
						continue
					}
					own := vs.Doc != nil || vs.Comment != nil || (len(v.Decl.Specs) == 1 && v.Doc != "")
					if !own {
						out = append(out, fmt.Sprintf("%s: no doc comment of its own", n.Name))
					}
				}
			}
		}
	}
	funcs := func(recv string, fs []*doc.Func) {
		for _, f := range fs {
			name := f.Name
			if recv != "" {
				name = recv + "." + name
			}
			if strings.TrimSpace(f.Doc) == "" {
				out = append(out, fmt.Sprintf("func %s: no doc comment", name))
			} else if !startsWith(f.Doc, f.Name) {
				out = append(out, fmt.Sprintf("func %s: doc does not start with %q", name, f.Name))
			}
		}
	}
	funcs("", p.Funcs)
	values(p.Consts)
	values(p.Vars)
	for _, ty := range p.Types {
		named("type", ty.Name, ty.Doc)
		funcs("", ty.Funcs)
		funcs(ty.Name, ty.Methods)
		values(ty.Consts)
		values(ty.Vars)
		for _, s := range ty.Decl.Specs {
			ts := s.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok || ts.Assign != 0 {
				continue
			}
			for _, f := range st.Fields.List {
				for _, n := range f.Names {
					if n.IsExported() && f.Doc == nil && f.Comment == nil {
						out = append(out, fmt.Sprintf("field %s.%s: no doc comment", ty.Name, n.Name))
					}
				}
			}
		}
	}
	return out
}

// startsWith reports whether doc starts with name as a word.
func startsWith(doc, name string) bool {
	doc = strings.TrimPrefix(doc, "Deprecated: ")
	if !strings.HasPrefix(doc, name) {
		return false
	}
	rest := doc[len(name):]
	if rest == "" {
		return true
	}
	r := []rune(rest)[0]
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, generating gives %q", i+1, gl, wl)
		}
	}
	return "no difference"
}

// Issue 21: every Example of the adapters and of kafkatest, and every
// program under examples/, imports only what a user's module can import
// (no internal package), so that each can be copied as it is.
func TestExamplesImportNoInternalPackage(t *testing.T) {
	var files []string
	for _, pattern := range []string{"adapters/*/example_test.go", "kafkatest/example_test.go", "examples/*/*.go"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") && !strings.HasSuffix(name, "example_test.go") {
			continue // a program's own tests may use internal helpers
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			if p := strings.Trim(im.Path.Value, `"`); strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
				t.Errorf("%s imports %s, which a user's module cannot", name, p)
			}
		}
	}
}
