package depcheck_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMainModuleDeps keeps socket.io and its QUIC and WebTransport stack out
// of the main module: they live in the nested module github.com/hallpass/
// hallpass/socketio, so a service that imports verifier/ never downloads
// them. Test dependencies count too: go mod tidy would list them in go.mod.
func TestMainModuleDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	list := exec.Command(goTool, "list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")
	list.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -test ./...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		for _, refused := range []string{"github.com/quic-go/", "webtransport", "github.com/zishang520/socket.io", "/hallpass/socketio"} {
			if strings.Contains(dep, refused) {
				t.Errorf("the main module depends on %s: socket.io code belongs in the socketio module", dep)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages from %s, too few for the main module", len(deps), list.Dir)
	}
	t.Logf("main module: %d non-standard packages (tests included)", len(deps))
}
