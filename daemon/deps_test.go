package daemon_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// This test enforces the import arrows of ARCHITECTURE.md by parsing the
// import clauses of every non-test Go file in the module (no go/packages, no
// go command). Test files are exempt: tests may import anything.

const module = "github.com/entrepot/entrepot"

// importGraph maps each package (import path) of the module to its direct imports.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	graph := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := module
		if rel != "." {
			pkg = module + "/" + filepath.ToSlash(rel)
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			graph[pkg] = append(graph[pkg], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// closure returns every import reachable from pkg, following module-internal
// packages (external modules' own imports are not followed).
func closure(graph map[string][]string, pkg string) map[string]string {
	via := map[string]string{} // import -> the internal package that imports it
	queue := []string{pkg}
	seen := map[string]bool{pkg: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range graph[p] {
			if _, ok := via[imp]; !ok {
				via[imp] = p
			}
			if _, internal := graph[imp]; internal && !seen[imp] {
				seen[imp] = true
				queue = append(queue, imp)
			}
		}
	}
	return via
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

func TestImportArrows(t *testing.T) {
	graph := importGraph(t)
	for _, must := range []string{module + "/daemon", module + "/cli"} {
		if _, ok := graph[must]; !ok {
			t.Fatalf("package %s not found; is the walk rooted right?", must)
		}
	}
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)

	// The S3 layer sees only the storage model: it imports neither libp2p nor
	// the cluster packages itself. (It does reach them through daemon/model,
	// whose replicated tables run over rpc: model.Config.Replicator.)
	t.Run("daemon/s3 imports no libp2p or cluster package", func(t *testing.T) {
		for _, p := range pkgs {
			if !under(p, module+"/daemon/s3") {
				continue
			}
			for _, imp := range graph[p] {
				if strings.HasPrefix(imp, "github.com/libp2p/") || strings.HasPrefix(imp, "github.com/multiformats/") {
					t.Errorf("%s imports %s", p, imp)
				}
				for _, c := range []string{"p2p", "rpc", "cluster", "layout", "table", "block"} {
					if under(imp, module+"/daemon/"+c) {
						t.Errorf("%s imports %s", p, imp)
					}
				}
			}
		}
	})
	t.Run("natpunch imports nothing from daemon", func(t *testing.T) {
		for _, p := range pkgs {
			if !under(p, module+"/natpunch") {
				continue
			}
			for imp, from := range closure(graph, p) {
				if under(imp, module+"/daemon") || under(imp, module+"/cli") {
					t.Errorf("%s reaches %s (imported by %s)", p, imp, from)
				}
			}
		}
	})
	t.Run("only cli and tests import package daemon", func(t *testing.T) {
		for _, p := range pkgs {
			if under(p, module+"/cli") || under(p, module+"/tests") {
				continue
			}
			for _, imp := range graph[p] {
				if imp == module+"/daemon" {
					t.Errorf("%s imports the composition root %s", p, imp)
				}
			}
		}
	})
	t.Run("nothing below daemon imports cli or tests", func(t *testing.T) {
		for _, p := range pkgs {
			if !under(p, module+"/daemon") && !under(p, module+"/natpunch") {
				continue
			}
			for _, imp := range graph[p] {
				if under(imp, module+"/cli") || under(imp, module+"/tests") {
					t.Errorf("%s imports %s", p, imp)
				}
			}
		}
	})
	t.Run("daemon/layout stays pure", func(t *testing.T) {
		for imp, from := range closure(graph, module+"/daemon/layout") {
			if strings.HasPrefix(imp, "github.com/libp2p/") || imp == "net" || imp == "net/http" ||
				(under(imp, module+"/daemon") && !under(imp, module+"/daemon/layout")) {
				t.Errorf("daemon/layout reaches %s (imported by %s)", imp, from)
			}
		}
	})
	t.Run("admin and s3 do not import each other", func(t *testing.T) {
		for imp, from := range closure(graph, module+"/daemon/s3") {
			if under(imp, module+"/daemon/admin") {
				t.Errorf("daemon/s3 reaches %s (imported by %s)", imp, from)
			}
		}
		for imp, from := range closure(graph, module+"/daemon/admin") {
			if under(imp, module+"/daemon/s3") {
				t.Errorf("daemon/admin reaches %s (imported by %s)", imp, from)
			}
		}
	})
}

func TestMainStaysTiny(t *testing.T) {
	path := filepath.Join("..", "cli", "entrepot", "main.go")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 15 {
		t.Errorf("%s has %d lines; keep it a call to cli.Main()", path, n)
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, b, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != module+"/cli" {
			t.Errorf("%s imports %s; it should import only %s/cli", path, p, module)
		}
	}
	if !strings.Contains(string(b), "cli.Main()") {
		t.Errorf("%s does not call cli.Main()", path)
	}
}

// The checker itself: a forbidden import two internal hops away is found,
// and external modules' imports are not followed.
func TestClosureFollowsInternalImports(t *testing.T) {
	g := map[string][]string{
		"m/a": {"m/b", "fmt"},
		"m/b": {"m/c"},
		"m/c": {"github.com/libp2p/go-libp2p"},
		"m/d": {"github.com/x/y"},
	}
	via := closure(g, "m/a")
	if via["github.com/libp2p/go-libp2p"] != "m/c" {
		t.Errorf("closure(m/a) = %v; want libp2p via m/c", via)
	}
	if _, ok := via["github.com/x/y"]; ok {
		t.Error("closure followed an unrelated package")
	}
}
