package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the client light enough to embed in any app (and
// in gomobile builds): outside the standard library only golang.org/x/...
// and the hallpass dpop and keys packages. No HTTP framework, database
// client or server package.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	const self = "github.com/hallpass/hallpass/client"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", self).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		self:                                true,
		"github.com/hallpass/hallpass/dpop": true,
		"github.com/hallpass/hallpass/keys": true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] && !strings.HasPrefix(dep, "golang.org/x/") {
			t.Errorf("dependency %s is outside the allowed set", dep)
		}
	}
	if !strings.Contains(string(out), self) {
		t.Fatalf("go list did not list %s itself: %q", self, out)
	}
}
