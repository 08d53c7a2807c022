package config

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/config.md from the schema")

const configDoc = "../../docs/config.md"

// TestConfigReferenceMatchesSchema: docs/config.md is generated from the
// schema (the Config type, its field comments in types.go and the defaults
// table in defaults.go), so it cannot drift: a key added, removed or
// renamed, a comment or a default changed, and this test fails until
// `go test ./proxy/config -run TestConfigReferenceMatchesSchema
// -update-docs` rewrites it.
func TestConfigReferenceMatchesSchema(t *testing.T) {
	want := configReference(t)
	if *updateDocs {
		if err := os.WriteFile(configDoc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatalf("%v (generate it with -update-docs)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/config.md is not what the schema says; run\n\tgo test ./proxy/config -run TestConfigReferenceMatchesSchema -update-docs\nand review the diff")
	}
}

// configReference renders the reference: one row per key, in the order of
// the Config type.
func configReference(t *testing.T) []byte {
	comments := fieldComments(t, ".")
	defaults := defaultsTable(t, "defaults.go")
	var b bytes.Buffer
	b.WriteString(`# Configuration reference

Generated from the schema by ` + "`TestConfigReferenceMatchesSchema`" + `
(proxy/config/docs_test.go): the keys and their types from the ` + "`Config`" + `
type, the descriptions from its field comments (proxy/config/*.go), the
defaults from the one defaults table (proxy/config/defaults.go). Do not
edit by hand: change those and run

    go test ./proxy/config -run TestConfigReferenceMatchesSchema -update-docs

A config file is YAML or JSON; ` + "`${VAR}`" + ` in a value is replaced by the
environment variable. ` + "`weir validate FILE`" + ` reports every error with its
key and a fix. A plugin's ` + "`config`" + ` object is the plugin's own: see
plugins/<name>/README.md. The README tells how the pieces fit together.

| key | type | default | description |
|---|---|---|---|
`)
	var missing []string
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			ft := f.Type
			typ, sub := typeName(ft)
			def := defaults[key]
			if def == "" {
				def = "-"
			}
			desc := comments[rt.Name()+"."+f.Name]
			if desc == "" {
				missing = append(missing, fmt.Sprintf("%s (%s.%s)", key, rt.Name(), f.Name))
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", key, typ, cellText(def), cellText(desc))
			if sub != nil {
				suffix := "."
				if ft.Kind() == reflect.Slice {
					suffix = "[]."
				}
				walk(sub, key+suffix)
			}
		}
	}
	walk(configType, "")
	if len(missing) > 0 {
		t.Errorf("config keys without a description (give the field a doc or line comment in proxy/config):\n\t%s",
			strings.Join(missing, "\n\t"))
	}
	return b.Bytes()
}

// typeName names t for the reader and returns the struct to descend into,
// if any.
func typeName(t reflect.Type) (string, reflect.Type) {
	switch t {
	case durationType:
		return "duration", nil
	case stringListType:
		return "string or list of strings", nil
	case rawType:
		return "object (the plugin's)", nil
	case credentialsType:
		return typeName(credentialsMap)
	case listenersType:
		return "address or list of listeners", listenerType
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Struct:
		return "object", t
	case reflect.Slice:
		inner, sub := typeName(t.Elem())
		if sub != nil {
			return "list of objects", sub
		}
		return "list of " + inner + "s", nil
	case reflect.Map:
		inner, _ := typeName(t.Elem())
		return "map of " + inner + "s", nil
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer", nil
	case reflect.Float32, reflect.Float64:
		return "number", nil
	}
	return t.String(), nil
}

// fieldComments reads the doc and line comments of every struct field in
// the package's (non-test) Go files in dir, keyed "Type.Field".
func fieldComments(t *testing.T, dir string) map[string]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		structFieldComments(f, out)
	}
	return out
}

// structFieldComments adds the field comments of f's struct types to out.
func structFieldComments(f *ast.File, out map[string]string) {
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			text := strings.TrimSpace(fld.Doc.Text() + " " + fld.Comment.Text())
			for _, n := range fld.Names {
				out[ts.Name.Name+"."+n.Name] = strings.Join(strings.Fields(text), " ")
			}
		}
		return false
	})
}

// defaultsTable reads the table in the comment of defaults.go: lines
// "//\tkey  default  notes", keyed by key.
func defaultsTable(t *testing.T, file string) map[string]string {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(src), "\n") {
		row, ok := strings.CutPrefix(line, "//\t")
		if !ok || strings.HasPrefix(row, "key ") {
			continue
		}
		m := defaultsRow.FindStringSubmatch(row)
		if m == nil {
			continue
		}
		key, rest := m[1], m[2]
		// Columns are separated by two spaces or more.
		def, note, _ := strings.Cut(rest, "  ")
		def, note = strings.TrimSpace(def), strings.TrimSpace(note)
		if note != "" {
			def += " (" + note + ")"
		}
		for _, k := range strings.Split(key, ",") {
			out[strings.TrimSpace(k)] = def
		}
	}
	return out
}

// defaultsRow is one row of the table: keys (several joined by ", ") and
// the rest.
var defaultsRow = regexp.MustCompile(`^((?:\S+, )*\S+)\s+(\S.*)$`)

// cellText makes s safe inside a table cell.
func cellText(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// TestRepoStandsAlone: nothing in the repository points at documents
// outside it (the product notes it was built from are not in a clone):
// README, docs, plugin READMEs, comments and bench reports must stand
// alone.
func TestRepoStandsAlone(t *testing.T) {
	// Spelled in pieces so that this file does not match itself.
	needles := []string{"../" + "shared/", "SPEC" + ".md", "DESIGN" + ".md", "BENCH" + ".md"}
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".sh", ".yaml", ".yml", ".txt", ".json", ".toml", ".conf", ".cfg", "":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if i := bytes.Index(b, []byte(n)); i >= 0 {
				line := bytes.Count(b[:i], []byte("\n")) + 1
				t.Errorf("%s:%d points outside the repository (%s): say it here instead", strings.TrimPrefix(path, root+"/"), line, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
