// Package depcheck guards a package's dependency set in its tests, with
// `go list -deps`, so that a consumer that only verifies tokens never pulls
// in an HTTP framework or a database client by accident (the pattern of
// tailscale's cmd/tailscaled/deps_test.go).
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Allowed lists the non-standard-library dependencies of pkg (an import
// path; pkg itself included) and fails t for each one that allow refuses.
// It returns the list, in go list order, for logging.
func Allowed(t testing.TB, pkg string, allow func(path string) bool) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	self := false
	for _, dep := range deps {
		if dep == pkg {
			self = true
			continue
		}
		if !allow(dep) {
			t.Errorf("%s depends on %s, outside its allowed set", pkg, dep)
		}
	}
	if !self {
		t.Fatalf("go list did not list %s itself: %q", pkg, out)
	}
	return deps
}

// All returns every dependency of pkg, standard library included, as a
// set, for a test that a package stays off one (for example net/http).
func All(t testing.TB, pkg string) map[string]bool {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		deps[d] = true
	}
	if !deps[pkg] {
		t.Fatalf("go list did not list %s itself: %q", pkg, out)
	}
	return deps
}
