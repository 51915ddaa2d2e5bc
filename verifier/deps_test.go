package verifier

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the verifier light: a service that only verifies
// tokens must not pull in an HTTP framework, a database client or a JOSE
// library. Allowed outside the standard library: golang.org/x/...,
// aidanwoods.dev/... and the hallpass keys and token packages.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	const self = "github.com/hallpass/hallpass/verifier"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", self).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/hallpass/hallpass/keys":     true,
		"github.com/hallpass/hallpass/token":    true,
		"github.com/hallpass/hallpass/verifier": true,
	}
	var seen []string
	for _, dep := range strings.Fields(string(out)) {
		seen = append(seen, dep)
		switch {
		case strings.Contains(dep, "labstack/echo"), strings.Contains(dep, "redis"), strings.Contains(dep, "go-jose"):
			t.Errorf("forbidden dependency %s", dep)
		case allowed[dep], strings.HasPrefix(dep, "golang.org/x/"), strings.HasPrefix(dep, "aidanwoods.dev/"):
		default:
			t.Errorf("dependency %s is outside the allowed set", dep)
		}
	}
	if !strings.Contains(string(out), self) {
		t.Fatalf("go list did not list %s itself: %q", self, out)
	}
	t.Logf("non-standard dependencies: %v", seen)
}
