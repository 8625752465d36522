package main

// This file reads the engine's source and writes one adapter's
// options_shared.go.

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const (
	outFile    = "options_shared.go"
	enginePath = "github.com/inorder/inorder/adapters/internal/engine"
	width      = 77 // columns of a generated comment line, tabs as 4
)

// Adapters are the packages generated for. Message is the adapter's
// message type, for the engine's generic options (their type parameter M),
// and Import the package it names. Settings, by option name (With dropped),
// say which setting of the adapter's client the option sets; the sentence
// is appended to the option's doc.
var Adapters = map[string]struct {
	Message, Import string
	Settings        map[string]string
}{
	"franz": {Message: "*kgo.Record", Import: "github.com/twmb/franz-go/pkg/kgo", Settings: map[string]string{
		"SessionTimeout":    "It sets kgo.SessionTimeout.",
		"RebalanceTimeout":  "It sets kgo.RebalanceTimeout.",
		"HeartbeatInterval": "It sets kgo.HeartbeatInterval.",
		"ReadCommitted":     "It sets kgo.FetchIsolationLevel.",
		"FetchMaxBytes": "It sets kgo.FetchMaxPartitionBytes and kgo.FetchMaxBytes (a kgo.FetchMaxBytes " +
			"given with WithClientOptions may raise the response's).",
		"FetchMaxWait":     "It sets kgo.FetchMaxWait.",
		"RetryBackoff":     "It sets kgo.RetryBackoffFn.",
		"ClientID":         "It sets kgo.ClientID.",
		"StartOffset":      "The Consumer applies it itself (kgo.ConsumeResetOffset may not be given).",
		"RequestTimeout":   "The Consumer applies it to its own requests.",
		"MaxBufferedBytes": "kgo buffers about one fetch response (at most FetchMaxBytes) per broker on top.",
	}},
	"confluent": {Message: "*kafka.Message", Import: "github.com/confluentinc/confluent-kafka-go/v2/kafka", Settings: map[string]string{
		"SessionTimeout":    "It sets librdkafka's session.timeout.ms (a ConfigMap may set that instead, not as well).",
		"RebalanceTimeout":  "It sets librdkafka's max.poll.interval.ms (a ConfigMap may set that instead, not as well).",
		"HeartbeatInterval": "It sets librdkafka's heartbeat.interval.ms (a ConfigMap may set that instead, not as well).",
		"ReadCommitted":     "It sets librdkafka's isolation.level (a ConfigMap may set that instead, not as well).",
		"StartOffset":       "It sets librdkafka's auto.offset.reset (a ConfigMap may set that instead, not as well).",
		"FetchMaxBytes":     "It sets librdkafka's max.partition.fetch.bytes (a ConfigMap may set that instead, not as well).",
		"FetchMaxWait":      "It sets librdkafka's fetch.wait.max.ms (a ConfigMap may set that instead, not as well).",
		"RetryBackoff":      "It sets librdkafka's retry.backoff.ms (a ConfigMap may set that instead, not as well).",
		"ClientID":          "It sets librdkafka's client.id (a ConfigMap may set that instead, not as well).",
		"RequestTimeout": "It sets librdkafka's socket.timeout.ms, raised to FetchMaxWait + 1s if below " +
			"(a ConfigMap may set that instead, not as well): it bounds every request librdkafka sends, commits included.",
		"MaxBufferedBytes": "It also sets librdkafka's queued.max.messages.kbytes to a quarter of n and " +
			"fetch.max.bytes to the larger of a quarter of n and 1 MB (a ConfigMap may set those).",
	}},
	"kafkago": {Message: "kafka.Message", Import: "github.com/segmentio/kafka-go", Settings: map[string]string{
		"MaxBufferedBytes": "Each partition's fetch loop holds one response (at most FetchMaxBytes) on top.",
	}},
}

// aliases are the engine's enumerations the adapters export as aliases,
// with their constants: engine name → adapter name.
var aliases = []struct{ engine, name string }{
	{"ErrorPolicy", "ErrorPolicy"},
	{"StartOffset", "StartOffset"},
	{"Ordering", "Ordering"},
	{"State", "PartitionState"},
	{"TopicPartition", "TopicPartition"},
}

// structs are the engine's struct types the adapters define again, field
// for field, so that `go doc` shows the fields (an alias of an internal
// type shows none). Conversions between the two are free. conv names the
// generated function converting a slice from the engine's, or "".
var structs = []struct{ name, conv string }{
	{"Retry", ""},
	{"PartitionStats", "partitionStats"},
}

// renames are engine identifiers the adapters spell otherwise, in code and
// in doc comments (as whole words).
var renames = map[string]string{
	"Stop":  "StopOnError",
	"State": "PartitionState", // in code only: "State" in a doc is the field
}

// replacements rewrite engine-internal references in doc comments.
var replacements = []struct{ old, new string }{
	{"Config.KeylessOrdered", "WithKeylessOrdered"},
	{" M is the adapter's message type; genoptions writes each adapter's WithDeadLetterFunc over it.", ""},
}

// docs replace engine doc comments that speak of the engine's internals.
var docs = map[string]string{
	"State": "PartitionState is where a partition is in its life cycle (PartitionStats.State): " +
		"assigned, active or paused, then revoking and closed, or lost. Its String method names it " +
		"in lower case.",
	"StatePaused": "StatePaused: owned, its fetching paused (its window, or its share of " +
		"MaxBufferedBytes, is full).",
	"StateRevoking": "StateRevoking: being drained and committed (a rebalance or the shutdown); " +
		"its queued messages are no longer handed out.",
	"StateLost":                "StateLost: dropped without commit (the partition was lost); late acks are ignored.",
	"PartitionStats":           "PartitionStats describes one partition the Consumer owns; see Consumer.Stats.",
	"TopicPartition":           "TopicPartition names a partition: its Topic and Partition number.",
	"PartitionStats.Topic":     "Topic is the partition's topic.",
	"PartitionStats.Partition": "Partition is the partition's number.",
}

// extraDefaults are exported although no option is named after them.
var extraDefaults = []string{"DefaultMaxRetryBackoff"}

type constEntry struct {
	name  string
	typ   string // declared type, explicit or inherited in its group; "" untyped
	spec  *ast.ValueSpec
	group *ast.GenDecl
	file  string
}

// doc returns the constant's doc comment: its own, or its declaration's
// when it is declared alone.
func (c constEntry) doc() *ast.CommentGroup {
	if c.spec.Doc == nil && len(c.group.Specs) == 1 {
		return c.group.Doc
	}
	return c.spec.Doc
}

type engineSrc struct {
	fset    *token.FileSet
	funcs   map[string]*ast.FuncDecl
	funcSeq []*ast.FuncDecl // options.go's, in source order
	types   map[string]*ast.TypeSpec
	typeDoc map[string]*ast.CommentGroup
	consts  []constEntry
	imports map[string]string // package name → path
}

func readEngine(dir string) (*engineSrc, error) {
	fset := token.NewFileSet()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	e := &engineSrc{
		fset: fset, funcs: map[string]*ast.FuncDecl{}, types: map[string]*ast.TypeSpec{},
		typeDoc: map[string]*ast.CommentGroup{}, imports: map[string]string{},
	}
	for _, ent := range ents {
		n := ent.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			e.imports[name] = p
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || !d.Name.IsExported() {
					continue
				}
				e.funcs[d.Name.Name] = d
				if n == "options.go" {
					e.funcSeq = append(e.funcSeq, d)
				}
			case *ast.GenDecl:
				e.addGen(d, n)
			}
		}
	}
	return e, nil
}

func (e *engineSrc) addGen(d *ast.GenDecl, file string) {
	switch d.Tok {
	case token.TYPE:
		for _, s := range d.Specs {
			ts := s.(*ast.TypeSpec)
			e.types[ts.Name.Name] = ts
			doc := ts.Doc
			if doc == nil && len(d.Specs) == 1 {
				doc = d.Doc
			}
			e.typeDoc[ts.Name.Name] = doc
		}
	case token.CONST:
		typ := ""
		for _, s := range d.Specs {
			vs := s.(*ast.ValueSpec)
			if vs.Type != nil {
				typ = identName(vs.Type)
			} else if len(vs.Values) > 0 {
				typ = ""
			}
			for _, n := range vs.Names {
				if n.IsExported() {
					e.consts = append(e.consts, constEntry{n.Name, typ, vs, d, file})
				}
			}
		}
	}
}

// identName returns a type expression's identifier, or "" if it is not one.
func identName(x ast.Expr) string {
	if id, ok := x.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

type gen struct {
	e       *engineSrc
	adapter string
	message string            // the adapter's message type
	extra   map[string]string // package name → path, of the message type
	typeArg map[string]string // the function's type parameter → the message type
	buf     bytes.Buffer
	used    map[string]bool // package names used
	local   map[string]bool // engine names the adapter has under the same name (or renamed)
	structs map[string]bool
}

func generate(engineDir, adapter string) ([]byte, error) {
	a, ok := Adapters[adapter]
	if !ok {
		return nil, fmt.Errorf("unknown adapter %q", adapter)
	}
	e, err := readEngine(engineDir)
	if err != nil {
		return nil, err
	}
	msgPkg, _, _ := strings.Cut(strings.TrimPrefix(a.Message, "*"), ".")
	g := &gen{e: e, adapter: adapter, message: a.Message, extra: map[string]string{msgPkg: a.Import},
		used:  map[string]bool{"engine": true},
		local: map[string]bool{"Option": true}, structs: map[string]bool{}}
	for _, al := range aliases {
		g.local[al.engine] = true
	}
	for _, s := range structs {
		g.local[s.name] = true
		g.structs[s.name] = true
	}
	if err := g.aliases(); err != nil {
		return nil, err
	}
	if err := g.structTypes(); err != nil {
		return nil, err
	}
	opts := g.options()
	g.defaults(opts)
	g.headers()
	for _, f := range opts {
		if err := g.function(f, a.Settings[strings.TrimPrefix(f.Name.Name, "With")]); err != nil {
			return nil, err
		}
	}
	if f := e.funcs["Permanent"]; f != nil {
		if err := g.function(f, ""); err != nil {
			return nil, err
		}
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "// Code generated by genoptions from adapters/internal/engine; DO NOT EDIT.\n\n")
	fmt.Fprintf(&out, "package %s\n\n", adapter)
	out.WriteString("import (\n")
	var names []string
	for n := range g.used {
		names = append(names, n)
	}
	// The standard library first, then the rest, as goimports groups them.
	std := func(p string) bool { return !strings.Contains(strings.Split(p, "/")[0], ".") }
	slices.SortFunc(names, func(a, b string) int {
		pa, pb := g.importPath(a), g.importPath(b)
		if std(pa) != std(pb) {
			if std(pa) {
				return -1
			}
			return 1
		}
		return strings.Compare(pa, pb)
	})
	for i, n := range names {
		p := g.importPath(n)
		if p == "" {
			return nil, fmt.Errorf("no import path for package %s", n)
		}
		if i > 0 && std(g.importPath(names[i-1])) && !std(p) {
			out.WriteString("\n")
		}
		if p[strings.LastIndex(p, "/")+1:] != n {
			fmt.Fprintf(&out, "\t%s %q\n", n, p)
		} else {
			fmt.Fprintf(&out, "\t%q\n", p)
		}
	}
	out.WriteString(")\n")
	out.Write(g.buf.Bytes())
	src, err := format.Source(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format: %w\n%s", err, out.Bytes())
	}
	return src, nil
}

func (g *gen) importPath(name string) string {
	if name == "engine" {
		return enginePath
	}
	if p, ok := g.extra[name]; ok {
		return p
	}
	return g.e.imports[name]
}

// options returns the shared options: options.go's exported functions
// named With... returning Option, not generic or generic in the message
// type only (one type parameter, given the adapter's Message).
func (g *gen) options() []*ast.FuncDecl {
	var out []*ast.FuncDecl
	for _, f := range g.e.funcSeq {
		r := f.Type.Results
		tp := f.Type.TypeParams
		if !strings.HasPrefix(f.Name.Name, "With") || tp != nil && (len(tp.List) != 1 || len(tp.List[0].Names) != 1) ||
			r == nil || len(r.List) != 1 || identName(r.List[0].Type) != "Option" {
			continue
		}
		out = append(out, f)
	}
	return out
}

func (g *gen) aliases() error {
	for _, al := range aliases {
		ts := g.e.types[al.engine]
		if ts == nil {
			return fmt.Errorf("engine type %s not found", al.engine)
		}
		g.comment("", al.engine, g.e.typeDoc[al.engine])
		if ts.Assign != 0 {
			// An alias in the engine too: alias its target.
			target, err := g.expr(ts.Type)
			if err != nil {
				return err
			}
			fmt.Fprintf(&g.buf, "type %s = %s\n\n", al.name, target)
			continue
		}
		fmt.Fprintf(&g.buf, "type %s = engine.%s\n\n", al.name, al.engine)
		var cs []constEntry
		for _, c := range g.e.consts {
			if c.typ == al.engine {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		g.buf.WriteString("const (\n")
		for _, c := range cs {
			g.comment("\t", c.name, c.doc())
			fmt.Fprintf(&g.buf, "\t%s %s = engine.%s\n", rename(c.name), al.name, c.name)
		}
		g.buf.WriteString(")\n\n")
	}
	return nil
}

func (g *gen) structTypes() error {
	for _, s := range structs {
		ts := g.e.types[s.name]
		if ts == nil {
			return fmt.Errorf("engine struct %s not found", s.name)
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return fmt.Errorf("engine struct %s not found", s.name)
		}
		g.comment("", s.name, g.e.typeDoc[s.name])
		fmt.Fprintf(&g.buf, "type %s struct {\n", s.name)
		for _, f := range st.Fields.List {
			typ, err := g.expr(f.Type)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			var names []string
			for _, n := range f.Names {
				names = append(names, n.Name)
			}
			key := s.name + "." + names[0]
			g.comment("\t", key, f.Doc)
			line := ""
			if f.Comment != nil {
				line = " // " + strings.TrimSpace(f.Comment.Text())
			}
			fmt.Fprintf(&g.buf, "\t%s %s%s\n", strings.Join(names, ", "), typ, line)
		}
		g.buf.WriteString("}\n\n")
		if s.conv != "" {
			fmt.Fprintf(&g.buf, "// %s converts the engine's %s.\n", s.conv, s.name)
			fmt.Fprintf(&g.buf, "func %s(s []engine.%s) []%s {\n", s.conv, s.name, s.name)
			fmt.Fprintf(&g.buf, "\tif s == nil {\n\t\treturn nil\n\t}\n")
			fmt.Fprintf(&g.buf, "\tout := make([]%s, len(s))\n", s.name)
			fmt.Fprintf(&g.buf, "\tfor i, x := range s {\n\t\tout[i] = %s(x)\n\t}\n\treturn out\n}\n\n", s.name)
		}
	}
	return nil
}

// defaults exports Default<Option> for every option, in the options'
// order, and the extras.
func (g *gen) defaults(opts []*ast.FuncDecl) {
	byName := map[string]constEntry{}
	for _, c := range g.e.consts {
		byName[c.name] = c
	}
	var names []string
	for _, f := range opts {
		n := "Default" + strings.TrimPrefix(f.Name.Name, "With")
		if _, ok := byName[n]; ok {
			names = append(names, n)
		}
	}
	names = append(names, extraDefaults...)
	g.buf.WriteString("const (\n")
	for _, n := range names {
		c := byName[n]
		doc := ""
		switch {
		case c.doc() != nil:
			doc = c.doc().Text()
		case g.e.funcs["With"+strings.TrimPrefix(n, "Default")] != nil:
			doc = fmt.Sprintf("%s is the default of With%s", n, strings.TrimPrefix(n, "Default"))
			if c.spec.Comment != nil {
				doc += " (" + strings.TrimSpace(c.spec.Comment.Text()) + ")"
			}
			doc += "."
		case c.spec.Comment != nil:
			doc = fmt.Sprintf("%s is %s.", n, strings.TrimSpace(c.spec.Comment.Text()))
		}
		g.text("\t", doc)
		fmt.Fprintf(&g.buf, "\t%s = engine.%s\n", n, n)
	}
	g.buf.WriteString(")\n\n")
}

// headers exports the dead-letter header names.
func (g *gen) headers() {
	var hs []constEntry
	for _, c := range g.e.consts {
		if strings.HasPrefix(c.name, "Header") && c.file == "deadletter.go" {
			hs = append(hs, c)
		}
	}
	if len(hs) == 0 {
		return
	}
	g.comment("", "", hs[0].group.Doc)
	g.buf.WriteString("const (\n")
	for _, c := range hs {
		g.comment("\t", c.name, c.doc())
		fmt.Fprintf(&g.buf, "\t%s = engine.%s\n", c.name, c.name)
	}
	g.buf.WriteString(")\n\n")
}

// function writes f as a function of the adapter calling the engine's.
func (g *gen) function(f *ast.FuncDecl, setting string) error {
	doc := ""
	if f.Doc != nil {
		doc = f.Doc.Text()
	}
	if setting != "" {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + setting
	}
	g.text("", g.rewrite(f.Name.Name, doc))
	g.typeArg = map[string]string{}
	if tp := f.Type.TypeParams; tp != nil {
		g.typeArg[tp.List[0].Names[0].Name] = g.message
	}
	var params, args []string
	for _, p := range f.Type.Params.List {
		typ, err := g.expr(p.Type)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name.Name, err)
		}
		for _, n := range p.Names {
			params = append(params, n.Name+" "+typ)
			switch {
			case g.structs[identName(p.Type)]:
				args = append(args, fmt.Sprintf("engine.%s(%s)", identName(p.Type), n.Name))
			case strings.HasPrefix(typ, "..."):
				args = append(args, n.Name+"...")
			default:
				args = append(args, n.Name)
			}
		}
	}
	res, err := g.expr(f.Type.Results.List[0].Type)
	if err != nil {
		return err
	}
	fmt.Fprintf(&g.buf, "func %s(%s) %s { return engine.%s(%s) }\n\n",
		f.Name.Name, strings.Join(params, ", "), res, f.Name.Name, strings.Join(args, ", "))
	return nil
}

// expr prints a type expression of the engine as the adapter spells it.
func (g *gen) expr(x ast.Expr) (string, error) {
	var err error
	ast.Inspect(x, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok {
				g.used[id.Name] = true
			}
			return false
		case *ast.Ident:
			if m, ok := g.typeArg[n.Name]; ok {
				pkg, _, _ := strings.Cut(strings.TrimPrefix(m, "*"), ".")
				g.used[pkg] = true
				n.Name = m // printed as is
				return true
			}
			if _, engineType := g.e.types[n.Name]; engineType && err == nil {
				if !g.local[n.Name] {
					err = fmt.Errorf("engine type %s is not exported by the adapters (add it to aliases or structs)", n.Name)
				}
				n.Name = rename(n.Name)
			}
		}
		return true
	})
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := printer.Fprint(&b, g.e.fset, x); err != nil {
		return "", err
	}
	return b.String(), nil
}

func rename(name string) string {
	if r, ok := renames[name]; ok {
		return r
	}
	return name
}

// comment writes the doc of the engine declaration key (docs, or cg with
// the renames) as a comment indented by indent.
func (g *gen) comment(indent, key string, cg *ast.CommentGroup) {
	if d, ok := docs[key]; ok {
		g.text(indent, d)
		return
	}
	if cg == nil {
		return
	}
	g.text(indent, g.rewrite(key, cg.Text()))
}

var (
	word   = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)
	number = regexp.MustCompile(`^[0-9]+[.,;)]*$`)
)

// rewrite applies the renames (whole words; "State" is left alone, it is a
// field in the docs) and the replacements to the doc of key.
func (g *gen) rewrite(key, doc string) string {
	// One line per paragraph, so that a replacement can span lines.
	paras := strings.Split(doc, "\n\n")
	for i, p := range paras {
		if !strings.Contains(p, "\n ") && !strings.Contains(p, "\n\t") &&
			!strings.HasPrefix(p, " ") && !strings.HasPrefix(p, "\t") {
			paras[i] = strings.ReplaceAll(strings.TrimRight(p, "\n"), "\n", " ") + "\n"
		}
	}
	doc = strings.Join(paras, "\n\n")
	for _, r := range replacements {
		doc = strings.ReplaceAll(doc, r.old, r.new)
	}
	return word.ReplaceAllStringFunc(doc, func(w string) string {
		if w == "State" {
			return w
		}
		return rename(w)
	})
}

// text writes doc as a comment, its paragraphs filled to width; indented
// lines (code, lists) are kept as they are.
func (g *gen) text(indent, doc string) {
	doc = strings.TrimSpace(doc)
	if doc == "" {
		return
	}
	var para []string
	flush := func() {
		if len(para) == 0 {
			return
		}
		// "MaxAttempts: 4" stays on one line.
		words := strings.Fields(strings.Join(para, " "))
		for i := 0; i+1 < len(words); i++ {
			if strings.HasSuffix(words[i], ":") && number.MatchString(words[i+1]) {
				words[i] += " " + words[i+1]
				words = slices.Delete(words, i+1, i+2)
			}
		}
		line := ""
		for _, w := range words {
			if line != "" && len(indent)*4+3+len(line)+1+len(w) > width {
				fmt.Fprintf(&g.buf, "%s// %s\n", indent, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		fmt.Fprintf(&g.buf, "%s// %s\n", indent, line)
		para = nil
	}
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case l == "":
			flush()
			fmt.Fprintf(&g.buf, "%s//\n", indent)
		case l[0] == ' ' || l[0] == '\t':
			flush()
			fmt.Fprintf(&g.buf, "%s//%s\n", indent, l)
		default:
			para = append(para, l)
		}
	}
	flush()
}
