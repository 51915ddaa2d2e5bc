package docs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// snippetDocs are the documents whose ```go blocks must build as pasted:
// each block is a whole main.go, built with go build and checked with go vet
// against this working tree.
var snippetDocs = []string{"verifying.md"}

// snippet is one ```go block of a document.
type snippet struct {
	doc  string
	line int // of the block's first line of code
	code string
}

// goBlocks returns the ```go blocks of the Markdown document path.
func goBlocks(t *testing.T, path string) []snippet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out  []snippet
		cur  *snippet
		code strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &snippet{doc: filepath.Base(path), line: n + 1}
			code.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.code = code.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line)
			code.WriteByte('\n')
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: ```go block not closed", path, cur.line-1)
	}
	return out
}

// TestSnippetsBuild builds every ```go block of snippetDocs as the main.go
// of its own module, in a Go workspace with this repository's modules (the
// root one and any nested one, such as socketio), offline: what a reader
// gets by pasting a block into main.go of a module that requires hallpass.
func TestSnippetsBuild(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the snippets: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective(t, filepath.Join(root, "go.mod"))
	work := t.TempDir()
	var uses, pkgs []string
	where := map[string]snippet{}
	for _, doc := range snippetDocs {
		blocks := goBlocks(t, doc)
		if len(blocks) == 0 {
			t.Fatalf("%s: no ```go block (a vacuous check)", doc)
		}
		for _, s := range blocks {
			if !strings.HasPrefix(s.code, "package main\n") && !strings.Contains(s.code, "\npackage main\n") {
				t.Errorf("%s:%d: a ```go block must be a whole main.go (package main, imports, func main) so that it builds as pasted", s.doc, s.line)
				continue
			}
			name := fmt.Sprintf("%s_%d", strings.TrimSuffix(s.doc, ".md"), s.line)
			dir := filepath.Join(work, name)
			writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/"+name+"\n\ngo "+goVersion+"\n")
			writeFile(t, filepath.Join(dir, "main.go"), s.code)
			uses = append(uses, "./"+name)
			pkgs = append(pkgs, "./"+name)
			where[name] = s
		}
	}
	if t.Failed() {
		return
	}
	uses = append(uses, repoModules(t, root)...)
	writeFile(t, filepath.Join(work, "go.work"), "go "+goVersion+"\n\nuse (\n\t"+strings.Join(uses, "\n\t")+"\n)\n")

	for _, args := range [][]string{{"build"}, {"vet"}} {
		cmd := exec.Command(goBin, append(args, pkgs...)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(),
			"GOWORK="+filepath.Join(work, "go.work"),
			"GOFLAGS=", "GOPROXY=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0",
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("go %s of the snippets failed: %v\n%s", args[0], err, locate(string(out), where))
		}
	}
}

// locate rewrites "<name>/main.go:N" in go's output as the document and
// line the code came from.
func locate(out string, where map[string]snippet) string {
	re := regexp.MustCompile(`(?:\./)?([a-z]+_[0-9]+)/main\.go:([0-9]+)`)
	return re.ReplaceAllStringFunc(out, func(m string) string {
		g := re.FindStringSubmatch(m)
		s, ok := where[g[1]]
		if !ok {
			return m
		}
		n, _ := strconv.Atoi(g[2]) // digits, by the pattern
		return fmt.Sprintf("%s:%d", s.doc, s.line+n-1)
	})
}

// repoModules returns the directory of every Go module in the repository
// (go.mod files outside testdata, node_modules and hidden directories).
func repoModules(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root {
			switch name := d.Name(); {
			case name == "testdata", name == "node_modules", strings.HasPrefix(name, "."), strings.HasPrefix(name, "_"):
				return filepath.SkipDir
			}
		}
		if !d.IsDir() && d.Name() == "go.mod" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// goDirective returns the go line of a go.mod file.
func goDirective(t *testing.T, gomod string) string {
	t.Helper()
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9.]+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no go directive", gomod)
	}
	return string(m[1])
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
